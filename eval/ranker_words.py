"""The learned ranker's word associations in training (kb/search/associations.py).

Tables are learned from lecoqa's colloquial questions only (groups whose gold names files). The IP test
sets' questions (sample, policies) never enter a table, so their association columns are computed the same
way in training as in the app: from a table that has not seen them. lecoqa's own training rows get their
columns from tables learned without them (out of fold), so the model learns how far the table's word pairs
carry to questions it has not seen. The shipped table is learned from all of lecoqa.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kb.search.associations import ASSOC_FEATURES, Associations, association_columns, learn
from kb.search.retriever import Retriever

if TYPE_CHECKING:  # eval.train_ranker imports this module
    from eval.train_ranker import Group


def prepare(retriever: Retriever, groups: list[Group]) -> None:
    """Each group's query, candidate facts and gold words (lecoqa: every chunk of a gold file; else the
    gold candidates)."""
    chunks, docs = retriever.catalogue.chunks, retriever.catalogue.documents
    by_stem: dict[str, list[int]] = {}
    if any(g.by_file for g in groups):
        for row, chunk in enumerate(chunks):
            by_stem.setdefault(Path(docs[chunk.doc_id].file_name).stem, []).append(row)
    for g in groups:
        g.query = retriever.query_of(g.question)
        g.facts = tuple(retriever.facts(r) for r in g.rows)
        gold_rows = ([r for stem in g.gold for r in by_stem.get(stem, ())] if g.by_file
                     else [r for r, label in zip(g.rows, g.labels) if label])
        g.gold_words = frozenset().union(*(retriever.facts(r).words for r in gold_rows))


def learn_table(groups: list[Group]) -> Associations:
    """The table of the lecoqa groups among `groups`."""
    return learn((g.query.words, g.gold_words) for g in groups
                 if g.by_file and g.gold_words and g.query is not None)


def with_table(groups: list[Group], table: Associations) -> list[Group]:
    """The groups with their association columns computed from `table` (copies)."""
    out = []
    for g in groups:
        matrix = g.features.copy()
        if len(matrix) and g.query is not None:  # not `prepare`d (hand-made groups): columns kept
            matrix[:, -len(ASSOC_FEATURES):] = association_columns(g.query, list(g.facts), table)
        out.append(replace(g, features=matrix))
    return out


def out_of_fold(groups: list[Group], folds: int = 5) -> list[Group]:
    """Training groups with their association columns: lecoqa's from tables learned without their question
    (GroupKFold by question), the others' from the table of every lecoqa group here (it never holds them)."""
    from sklearn.model_selection import GroupKFold

    learned = [i for i, g in enumerate(groups) if g.by_file]
    others = [i for i, g in enumerate(groups) if not g.by_file]
    out: list[Group] = list(groups)
    if others:
        for i, g in zip(others, with_table([groups[i] for i in others], learn_table(groups))):
            out[i] = g
    texts = [groups[i].question for i in learned]
    if len(set(texts)) < 2:
        return out
    for train_idx, test_idx in GroupKFold(n_splits=min(folds, len(set(texts)))).split(texts, groups=texts):
        table = learn_table([groups[learned[j]] for j in train_idx])
        for j, g in zip(test_idx, with_table([groups[learned[j]] for j in test_idx], table)):
            out[learned[j]] = g
    return out


def featured(train_groups: list[Group], test_groups: list[Group]) -> tuple[list[Group], list[Group]]:
    """Training groups with out-of-fold association columns, test groups with the table of all training."""
    return out_of_fold(train_groups), with_table(test_groups, learn_table(train_groups))
