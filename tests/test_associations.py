"""Learned word associations (kb/search/associations.py) and the ranker's features over them."""
from __future__ import annotations

import numpy as np

from kb.search.associations import Associations, learn
from kb.search.ranker import ASSOC_FEATURES, FEATURES, ChunkFacts, Query, association_columns

PAIRS = [
    (["老公", "出轨", "离婚"], ["配偶", "离婚", "过错", "损害赔偿"]),
    (["老公", "借钱", "还钱"], ["配偶", "夫妻", "共同债务"]),
    (["老公", "房子"], ["配偶", "夫妻", "共同财产"]),
    (["借钱", "利息"], ["借款", "利息", "利率"]),
    (["借钱", "不还"], ["借款", "借款人", "返还"]),
    (["司机", "受伤"], ["承运人", "旅客", "伤亡"]),  # seen once: a coincidence, not kept
    (["商标", "注册"], ["商标", "注册", "申请"]),
    (["专利", "申请"], ["专利", "申请", "发明"]),
]


def test_learn_keeps_pairs_seen_together_more_often_than_chance():
    table = learn(PAIRS, min_count=2, top=10, shrink=0.0)
    assert table.table["老公"]["配偶"] > 0 and table.table["借钱"]["借款"] > 0
    assert "司机" not in table.table  # one pair is not enough
    assert "夫妻" in table.table["老公"] and "配偶" not in table.table["借钱"]  # seen together once
    strongest = max(table.table["老公"].values())
    assert table.table["老公"]["配偶"] == strongest
    # shrinking towards zero: a word seen twice keeps less than one seen three times
    shrunk = learn(PAIRS, min_count=2, top=10, shrink=2.0)
    assert shrunk.table["借钱"]["借款"] < table.table["借钱"]["借款"]
    # pruned to the top pairs per question word
    assert all(len(v) <= 1 for v in learn(PAIRS, min_count=2, top=1).table.values())


def test_table_text_round_trip(tmp_path):
    table = learn(PAIRS, min_count=2, top=10)
    text = table.to_text()
    assert text.startswith("#") and Associations.from_text(text) == table and len(table) == text.count("\n") - 1
    path = tmp_path / "associations.tsv"
    path.write_text(text, encoding="utf-8")
    assert Associations.load(path) == table and Associations.load(tmp_path / "absent.tsv") is None
    assert Associations.load() is not None, "kb/resources/associations.tsv is missing"


def facts(words: set[str], law: str) -> ChunkFacts:
    text = "".join(sorted(words))
    return ChunkFacts(text, text, law, law, law, (text,), frozenset(), frozenset(), len(text), False, 0, 0, True,
                      False, frozenset(words))


def test_association_columns_favour_the_chunk_in_legal_words():
    table = learn(PAIRS, min_count=2, top=10)
    query = Query("我老公借钱不还怎么办", ("老公", "借钱", "不还"), (2.0, 2.0, 1.0), ("老公", "借钱", "不还"),
                  frozenset(), frozenset(), frozenset(), (), (2.0, 2.0, 1.0))
    chunks = [facts({"配偶", "夫妻", "借款"}, "民法典"), facts({"专利", "申请"}, "专利法"), facts({"夫妻"}, "民法典")]
    out = association_columns(query, chunks, table)
    assert out.shape == (3, len(ASSOC_FEATURES)) and FEATURES[-len(ASSOC_FEATURES):] == ASSOC_FEATURES
    col = {name: out[:, i] for i, name in enumerate(ASSOC_FEATURES)}
    assert col["assoc_score"][0] > col["assoc_score"][2] > col["assoc_score"][1] == 0
    # none of the question's words is in the chunk: all of the score is for words it lacks
    assert np.allclose(col["assoc_missing"], col["assoc_score"])
    assert list(col["assoc_words"]) == [2, 0, 1] and list(col["assoc_rank"]) == [1, 3, 2]
    assert col["assoc_total"][0] >= col["assoc_score"][0] > 0
    assert col["assoc_gap"][0] == 0 > col["assoc_gap"][1]
    assert np.allclose(col["assoc_known"], 4 / 5)  # 老公 and 借钱 are in the table, 不还 is not
    assert col["law_assoc"][2] == col["assoc_score"][0]  # the best of its law
    empty = association_columns(query, chunks, Associations({}))
    assert not np.delete(empty, ASSOC_FEATURES.index("assoc_rank"), axis=1).any()  # all tie first


def test_a_model_file_is_read_only_with_its_association_table(tmp_path):
    from importlib import resources

    from kb.search.ranker import LearnedRanker

    model = tmp_path / "ranker.txt"
    model.write_text(resources.files("kb").joinpath("resources", "ranker.txt").read_text(encoding="utf-8"),
                     encoding="utf-8")
    assert LearnedRanker.load(model) is None  # its features would read an empty table: RRF instead
    table = learn(PAIRS, min_count=2, top=10)
    (tmp_path / "associations.tsv").write_text(table.to_text(), encoding="utf-8")
    ranker = LearnedRanker.load(model)
    assert ranker is not None and ranker.associations == table
    packaged = LearnedRanker.load()
    assert packaged is not None and packaged.associations == Associations.load() and len(packaged.associations) > 0
