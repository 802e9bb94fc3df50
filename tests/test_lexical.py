"""Tokeniser and BM25 on small strings."""
from __future__ import annotations

import numpy as np
import pytest

from kb.store.bm25 import BM25Index


@pytest.mark.parametrize("word", ["专利质押", "质押融资", "风险池基金", "被侵权保险", "高价值专利", "专利导航", "知识产权运营"])
def test_domain_words_stay_whole(tokenizer, word):
    assert word in tokenizer.tokens(f"关于加强{word}工作的意见")


def test_search_mode_also_yields_sub_words_and_drops_stop_words(tokenizer):
    tokens = tokenizer.tokens("请问专利质押贷款出了坏账，谁来兜底？")
    assert {"专利", "质押", "专利质押", "贷款", "坏账"} <= set(tokens)
    assert not {"请问", "谁", "，", "？", "了"} & set(tokens)
    assert tokenizer.tokens("ABC 2019年") == ["abc", "2019", "年"]


def test_bm25_prefers_rare_terms_and_shorter_rows():
    rows = [["专利", "质押", "风险池"], ["专利", "保险"], ["专利", "保险", "保险", "补贴", "申报", "流程", "材料", "时间"]]
    index = BM25Index.from_json(BM25Index.build(rows))
    scores = index.scores(["风险池", "专利"])
    assert int(np.argmax(scores)) == 0
    insurance = index.scores(["保险"])
    assert insurance[0] == 0 and insurance[1] > 0 and insurance[2] > 0
    assert index.scores(["不存在"]).sum() == 0
    assert BM25Index.from_json(BM25Index.build([])).scores(["专利"]).shape == (0,)
