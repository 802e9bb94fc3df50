"""Milvus as the store: one collection per knowledge-base generation, behind one alias.

A build writes the collection `<alias>_gen_<stamp>_<id>`, named after its generation folder:
per row (the primary key) the chunk id, the dense vector, the chunk's BM25 weights as a sparse
vector (kb/store/bm25.py `Lexicon`: the local index's weights, so the scores are the same), the
text BM25 reads (for Milvus's own BM25 function, `milvus_bm25 = "builtin"`) and the fields a
filter may use (doc_id, doc_type, issuer, date, level, region as "浙江省/宁波市", status as of the
build, file_name). When the generation folder (catalogue, manifest) is complete, the alias is
switched to it: that is the commit point, so a build killed before it leaves the alias on the
previous collection. Readers resolve the alias to a collection, and from its name to the folder,
so the catalogue and the index they open always belong together.

Filters are not translated into Milvus expressions: the retriever computes the admitted
documents from the catalogue (statuses depend on the date the knowledge base is opened, places
on the division table), and they become `doc_id in [...]`, so both stores filter alike.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from kb.core.errors import KbError
from kb.core.settings import Settings
from kb.store.bm25 import BM25Index, Lexicon
from kb.store.generations import current_generation, point_current
from kb.store.indexes import IndexRows, Ranking, RowFilter, read_rows, write_rows

try:
    from pymilvus import DataType, Function, FunctionType, MilvusClient
    from pymilvus.exceptions import MilvusException
except ImportError:  # pragma: no cover - depends on the installation
    raise KbError('store = "milvus" needs pymilvus (and milvus-lite for a local file): '
                  'pip install -e ".[milvus]"') from None

LEXICON = "lexicon.json"  # term ids and document frequencies: the query's sparse vector and idf()
FIELDS = {"doc_id": 64, "doc_type": 64, "issuer": 512, "date": 32, "level": 64, "region": 512,
          "status": 64, "file_name": 1024}  # VARCHAR limits, in bytes
TEXT_BYTES = 65535
BATCH = 256  # rows per insert call


def _clip(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


class MilvusStore:
    kind = "milvus"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.kb_dir = settings.store.kb_dir
        self.alias = settings.store.milvus_collection
        self.uri = settings.store.milvus_address
        self._client: MilvusClient | None = None

    # --- names: collection <-> generation folder
    def collection(self, generation: Path) -> str:
        return f"{self.alias}_{generation.name.replace('-', '_')}"

    def folder(self, collection: str) -> Path:
        return self.kb_dir / collection.removeprefix(f"{self.alias}_").replace("_", "-")

    def _ours(self) -> list[str]:
        """This knowledge base's collections (another alias's on the same server are left alone)."""
        pattern = re.compile(rf"{re.escape(self.alias)}_gen_\d{{8}}_\d{{6}}_[0-9a-f]+")
        return [c for c in self.client().list_collections() if pattern.fullmatch(c)]

    @property
    def lite(self) -> bool:
        return self.uri.endswith(".db")

    def client(self, create: bool = False) -> MilvusClient:
        if self._client is None:
            # milvus-lite logs a traceback when another process holds its files: the KbError below says it
            quiet = logging.getLogger("milvus_lite.server_manager")
            level = quiet.level
            quiet.setLevel(logging.CRITICAL)
            try:
                # milvus-lite runs in this process: no keep-alive pings, which its server answers, on an idle
                # connection (a long OCR or embedding phase of a build), with a GOAWAY and a logged error
                options = {"grpc_options": {"grpc.keepalive_time_ms": 2**31 - 1}} if self.lite else {}
                client = MilvusClient(uri=self.uri, token=self.settings.store.milvus_token, **options)
                if self.settings.store.milvus_db:
                    if create and self.settings.store.milvus_db not in client.list_databases():
                        client.create_database(self.settings.store.milvus_db)
                    client.use_database(self.settings.store.milvus_db)
            except MilvusException as exc:
                if self.lite:
                    raise KbError(f"cannot open the milvus-lite data {self.uri} ({exc.message}): milvus-lite "
                                  "serves one process, is another one using it? Several processes need a Milvus "
                                  "server (milvus_uri = http://host:19530)") from None
                raise KbError(f"cannot use Milvus at {self.uri}: {exc.message}") from None
            finally:
                quiet.setLevel(level)
            self._client = client
        return self._client

    def _target(self) -> str | None:
        """The collection the alias names, or None before the first build."""
        client = self.client()
        if self.alias not in client.list_aliases().get("aliases", []):
            return None
        return client.describe_alias(self.alias)["collection_name"]

    # --- the Store protocol (kb/store/backends.py)
    def current(self) -> Path | None:
        if self.lite and not Path(self.uri).exists():
            return None  # no build yet: opening milvus-lite would create its files
        target = self._target()
        if target is None:
            return None
        folder = self.folder(target)
        if not folder.is_dir():
            raise KbError(f"the Milvus alias {self.alias} names {target}, but its generation folder {folder} is "
                          f"missing (rebuilt with another store since, or a kb_dir not shared with the machine that "
                          f"built it): run `python -m ingest --kb {self.kb_dir}`")
        return folder

    def recover(self) -> None:
        """Drop the collections of unfinished builds, and point `current` at the alias's generation
        (a build killed between the alias switch and the symlink swap)."""
        target = self._target()
        for name in self._ours():
            # Names sort by time, and builds take turns: one newer than the alias's never got it.
            # An older one is the collection the alias's replaced: its readers keep it until the next publish.
            if target is None or name > target:
                self.client().drop_collection(name)
        if target is not None and self.folder(target).is_dir() and current_generation(self.kb_dir) != self.folder(target):
            point_current(self.kb_dir, self.folder(target))

    def write(self, generation: Path, rows: IndexRows) -> None:
        client = self.client(create=True)
        name = self.collection(generation)
        dim = int(rows.vectors.shape[1]) if len(rows.chunk_ids) else 1  # an empty collection still needs one
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("chunk_id", DataType.VARCHAR, max_length=128)
        for field, limit in FIELDS.items():
            schema.add_field(field, DataType.VARCHAR, max_length=limit)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=True,
                         analyzer_params={"tokenizer": "jieba"})
        schema.add_field("text_bm25", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["text_bm25"]))
        index = client.prepare_index_params()
        index.add_index(field_name="dense", index_type="FLAT", metric_type="IP")  # exact, as FAISS's IndexFlatIP
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        index.add_index(field_name="text_bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index)
        bm25 = BM25Index.from_json(BM25Index.build(rows.token_lists))
        lexicon = Lexicon.of(bm25)
        sparse = lexicon.row_vectors(bm25)
        for start in range(0, len(rows.chunk_ids), BATCH):
            client.insert(name, [
                {"row": row, "chunk_id": rows.chunk_ids[row], "dense": rows.vectors[row].astype(np.float32).tolist(),
                 "sparse": sparse[row], "text": _clip(rows.texts[row], TEXT_BYTES),
                 **{f: _clip(rows.fields[row].get(f, ""), limit) for f, limit in FIELDS.items()}}
                for row in range(start, min(start + BATCH, len(rows.chunk_ids)))])
        client.flush(name)  # durable before the alias may name it
        client.load_collection(name)
        write_rows(generation, rows.chunk_ids)
        lexicon.save(generation / LEXICON)

    def publish(self, generation: Path) -> None:
        client = self.client()
        name, replaced = self.collection(generation), self._target()
        if replaced is None:
            client.create_alias(name, self.alias)
        else:
            client.alter_alias(name, self.alias)  # the commit point
        # Older ones go now; the replaced one at the next publish: readers that opened it (the app's
        # answerer finishing its requests) search it, while local readers hold their index in memory.
        for other in self._ours():
            if other not in (name, replaced):
                client.drop_collection(other)

    def discard(self, generation: Path) -> None:
        try:
            if self._target() != self.collection(generation):  # never the published one
                self.client().drop_collection(self.collection(generation))
        except (MilvusException, KbError):
            pass  # the next build's recover() drops it

    def open(self, generation: Path) -> MilvusIndex:
        name = self.collection(generation)
        chunk_ids = read_rows(generation)
        client = self.client()
        try:
            client.load_collection(name)
            fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
            count = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        except MilvusException as exc:
            raise KbError(f"the Milvus collection {name} of {generation} is unusable ({exc.message}): "
                          f"rebuild with `python -m ingest --rebuild --kb {self.kb_dir}`") from None
        if count != len(chunk_ids):
            raise KbError(f"the Milvus collection {name} has {count} rows, {generation} lists {len(chunk_ids)}: "
                          f"rebuild with `python -m ingest --rebuild --kb {self.kb_dir}`")
        dim = int(fields["dense"]["params"]["dim"]) if chunk_ids else 0
        return MilvusIndex(self, name, chunk_ids, Lexicon.load(generation / LEXICON), dim)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class MilvusIndex:
    """One generation's collection, searched by name (not through the alias): a reader keeps
    searching the generation it opened, whatever builds publish meanwhile."""

    def __init__(self, store: MilvusStore, collection: str, chunk_ids: list[str], lexicon: Lexicon, dim: int):
        self.store = store
        self.collection = collection
        self.chunk_ids = chunk_ids
        self.lexicon = lexicon
        self.dim = dim
        self.builtin_bm25 = store.settings.store.milvus_bm25 == "builtin"

    def _search(self, data, field: str, n: int, allowed: RowFilter | None) -> Ranking:
        if not self.chunk_ids or (allowed is not None and not allowed.doc_ids) or n <= 0:
            return []
        expr = "" if allowed is None else f"doc_id in {json.dumps(sorted(allowed.doc_ids), ensure_ascii=False)}"
        try:
            hits = self.store.client().search(self.collection, data=[data], anns_field=field, filter=expr,
                                              limit=min(n, len(self.chunk_ids)), output_fields=[])
        except MilvusException as exc:
            raise KbError(f"searching the Milvus collection {self.collection} failed: {exc.message}") from None
        # milvus-lite reports its BM25 function's score negated (smaller is better); a server, as is
        return [(int(hit["row"]), abs(float(hit["distance"]))) for hit in hits[0]]

    def dense(self, vector: np.ndarray, n: int, allowed: RowFilter | None) -> Ranking:
        return self._search(vector.reshape(-1).astype(np.float32).tolist(), "dense", n, allowed)

    def lexical(self, query: str, tokens: list[str], n: int, allowed: RowFilter | None) -> Ranking:
        if self.builtin_bm25:
            return self._search(query, "text_bm25", n, allowed)
        sparse = self.lexicon.query(tokens)
        return self._search(sparse, "sparse", n, allowed) if sparse else []

    def idf(self, term: str) -> float:
        return self.lexicon.idf(term)

    def close(self) -> None:
        self.store.close()
