"""A strategy's draft, and the one step that turns any draft into the `Answer` record."""
from __future__ import annotations

from dataclasses import dataclass, field

from kb.core.citations import source_line
from kb.core.records import Answer, Citation, Passage

# (passage, indices of its sentences the answer rests on, their spans in the passage text)
Cited = tuple[Passage, list[int], list[tuple[int, int]]]


@dataclass
class Draft:
    """An answer before composition: text with [n] markers and what each n points to, or a refusal."""

    text: str
    cited: list[Cited] = field(default_factory=list)
    refused: bool = False
    reason: str = ""  # why it refused, for reviewers (Answer.flags)
    renumbered: bool = True  # [n] count the cited passages 1, 2, …; False: n is the passage's rank
    flags: list[str] = field(default_factory=list)
    # LLM drafts: sentences kept (their cited passage supports them) and dropped; withheld: none held
    supported: int = 0
    dropped: int = 0
    withheld: bool = False


def refusal(reason: str) -> Draft:
    return Draft("", refused=True, reason=reason)


def compose(question: str, standalone: str, draft: Draft, passages: list[Passage], notices: list[str],
            refusal_text: str, answerer: str) -> Answer:
    """The Answer: citations with their source lines, or the refusal text with the closest passages."""
    if draft.refused:
        return Answer(question=question, body=refusal_text, refused=True, citations=[], passages=passages,
                      notices=notices, standalone_question=standalone, answerer=answerer,
                      flags=[f"refused: {draft.reason}", *draft.flags])
    citations = []
    for i, (passage, sentences, spans) in enumerate(draft.cited, start=1):
        # an LLM's own [n] refer to the passages it was given: keep them, list citations by them
        n = i if draft.renumbered else passages.index(passage) + 1
        citations.append(Citation(
            n=n, text=passage.text, title=passage.title, doc_number=passage.doc_number, date=passage.date,
            pages=passage.pages, section=passage.heading_path, source=passage.source,
            chunk_id=passage.chunk_id, sentences=sentences, spans=spans, doc_id=passage.doc_id,
            profile=passage.profile,
        ))
    sources = [f"[{c.n}] {source_line(p)}" for c, (p, _, _) in zip(citations, draft.cited)]
    return Answer(question=question, body=draft.text, refused=False, citations=citations, passages=passages,
                  sources=sources, notices=notices, standalone_question=standalone, answerer=answerer,
                  flags=list(draft.flags))
