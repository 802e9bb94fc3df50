"""One settings object, read once: defaults < config file (ipkb.toml) < IPKB_* environment.

The config file is `ipkb.toml` in the working directory, or the file named by
IPKB_CONFIG. Each field can be set in the file by its name, or in the environment as
IPKB_<NAME> (e.g. IPKB_KB_DIR=/srv/ipkb/kb).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    kb_dir: Path = Path(".kb")
    corpus: list[Path] = field(default_factory=lambda: [Path("data/corpus")])
    max_file_mb: float = 30.0  # larger files are refused with a reason, not ingested
    ocr: bool = True  # OCR PDF pages that have no text layer
    ocr_scale: float = 2.0  # render scale for OCR (2 = about 144 dpi)
    host: str = "127.0.0.1"  # where the web app listens
    port: int = 7860
    embedder: str = "none"  # recorded in the manifest; indexes arrive with the kb issue

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


def _convert(name: str, kind: type | str, raw: object) -> object:
    kind_name = kind if isinstance(kind, str) else kind.__name__
    try:
        if "list" in kind_name:
            items = raw if isinstance(raw, list) else str(raw).split(os.pathsep)
            return [Path(str(x)) for x in items if str(x)]
        if "Path" in kind_name:
            return Path(str(raw))
        if "bool" in kind_name:
            if isinstance(raw, bool):
                return raw
            value = str(raw).strip().lower()
            if value not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                raise ValueError(f"expected true/false, got {raw!r}")
            return value in {"1", "true", "yes", "on"}
        if kind_name == "int":
            return int(raw)
        if "float" in kind_name:
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: {exc}") from None


def load_settings(env: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    path = config_file or Path(env.get("IPKB_CONFIG", "ipkb.toml"))
    values: dict[str, object] = {}
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    known = {f.name: f.type for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    for name in known:
        if f"IPKB_{name.upper()}" in env:
            values[name] = env[f"IPKB_{name.upper()}"]
    return Settings(**{k: _convert(k, known[k], v) for k, v in values.items()})
