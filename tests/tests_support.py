"""Paths, texts and helpers shared by test modules (fixtures live in conftest.py)."""
import time
from collections.abc import Sequence
from pathlib import Path

from kb.core.records import Passage

REPO = Path(__file__).resolve().parents[1]

# The stores the search index can live in (settings.store.store). The fixtures of the retrieval, answers,
# policies, API and re-index tests are parametrised over them, so `make test` runs those on both.
STORES = ("local", "milvus")
LITE_ONE_PROCESS = "milvus-lite serves one process: this test process holds the knowledge base open"
BUNDLED_CORPUS = REPO / "data" / "corpus"
REPLY_LETTER = BUNDLED_CORPUS / "nbamr-2019-25-reply-to-proposal-130.txt"
# the letter and the 17 policy documents: the knowledge base before the law library (data/corpus/library) joined it
POLICIES_CORPUS = [REPLY_LETTER, BUNDLED_CORPUS / "policies"]
REPO_CONFIG = REPO / "ipkb.toml"  # the bundled deployment's settings (its home place)
EMBED_SEED = REPO / "data" / "embed-seed.sqlite"  # e5's vectors of the bundled corpus's chunks (`make seed`)

# A new policy the management tests upload: a fact (12万元) the sample letter does not have.
SUBSIDY_QUESTION = "宁波专利保险的保费补贴最高多少钱？"
SUBSIDY_POLICY = """宁波市知识产权局关于开展专利保险保费补贴的通知

各区县（市）市场监督管理局，各有关企业：

一、补贴对象
在宁波市注册的企业投保专利执行保险、发明专利被侵权保险的，可以申请保费补贴。

二、补贴标准
按企业实际缴纳保费的60%给予补贴，每家企业每年最高补贴12万元。

三、申请时间
企业应于每年3月31日前向市知识产权局提交补贴申请。
"""


def wait_idle(service, timeout: float = 120):
    """Wait until the service's background re-index is over; returns the finished job."""
    deadline = time.time() + timeout
    while service.job.running:  # re-read: a queued re-run replaces the job
        assert time.time() < deadline, f"re-index still running: {service.job}"
        time.sleep(0.05)
    return service.job


# The sample letter's document facts, for hand-made passages that stand for its chunks.
LETTER_FACTS = {"title": "关于市政协十五届三次会议第130号提案的答复", "doc_number": "甬市监函〔2019〕25号",
                "issuer": "宁波市市场监督管理局", "date": "2019-07-22", "doc_type": "答复"}


def passage(rank: int = 1, text: str = "出台了扶持政策。", *, heading: Sequence[str] = (), score: float | None = None,
            title: str = "关于印发若干措施的通知", doc_number: str | None = "甬知〔2024〕1号",
            issuer: str | None = "宁波市知识产权局", date: str | None = "2024-01-15", doc_type: str = "通知",
            pages: Sequence[int] = (1,), doc_id: str = "doc", source: str | None = None) -> Passage:
    """A hand-made retrieved passage (the only Passage factory of the tests): the unit tests of answering,
    validation and rendering need no knowledge base. Its sentence spans are the splitter's, as stored."""
    source = source or f"{doc_id}.txt"
    return Passage(rank=rank, score=1.0 / rank if score is None else score, chunk_id=f"{doc_id}-{rank:04d}",
                   doc_id=doc_id, text=text, title=title, doc_number=doc_number, issuer=issuer, date=date,
                   doc_type=doc_type, pages=list(pages), heading_path=list(heading), source=source,
                   source_path=f"/corpus/{source}")
