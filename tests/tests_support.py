"""Paths, texts and helpers shared by test modules (fixtures live in conftest.py)."""
import time
from pathlib import Path

from kb.core.records import Passage

REPO = Path(__file__).resolve().parents[1]

# The stores the search index can live in (settings.store.store). The fixtures of the retrieval, answers,
# policies, API and re-index tests are parametrised over them, so `make test` runs those on both.
STORES = ("local", "milvus")
LITE_ONE_PROCESS = "milvus-lite serves one process: this test process holds the knowledge base open"
REPLY_LETTER = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"

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


def passage(rank: int, text: str, *, heading: tuple[str, ...] = (), title: str = "关于印发若干措施的通知",
            issuer: str = "宁波市知识产权局", doc_id: str = "doc") -> Passage:
    """A hand-made retrieved passage: the unit tests of the answer heuristics need no knowledge base."""
    return Passage(rank=rank, score=1.0 / rank, chunk_id=f"{doc_id}-{rank:04d}", doc_id=doc_id, text=text,
                   title=title, doc_number="甬知〔2024〕1号", issuer=issuer, date="2024-01-15", doc_type="通知",
                   pages=[1], heading_path=list(heading), source=f"{doc_id}.txt", source_path=f"/corpus/{doc_id}.txt")
