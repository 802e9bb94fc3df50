"""The knowledge base as a LangChain retriever, so it plugs into LangChain chains."""
from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from kb.search.retriever import Filters, Mode, Retriever


class KbRetriever(BaseRetriever):
    """page_content is the passage text; metadata is the passage JSON (title, 文号, pages, section…)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = 10
    filters: Filters | None = None
    mode: Mode = "hybrid"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        passages = self.retriever.search(query, k=self.k, filters=self.filters, mode=self.mode)
        return [LCDocument(page_content=p.text, metadata=p.to_json(), id=p.chunk_id) for p in passages]
