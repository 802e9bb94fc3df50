"""The shared jieba tokeniser's memory of short texts (kb/core/tokenizer.py)."""
from __future__ import annotations


def test_tokens_are_remembered_for_short_texts_only_and_within_a_bound(tokenizer, monkeypatch):
    from kb.core import tokenizer as module

    sentence = "对投保专利执行保险的企业给予保费补贴。"
    first = tokenizer.tokens(sentence)
    first.append("改动")  # a caller's list is its own
    assert tokenizer.tokens(sentence) == first[:-1] and sentence in tokenizer._cache
    long_text = "专利质押" * 60
    assert tokenizer.tokens(long_text) and long_text not in tokenizer._cache
    monkeypatch.setattr(module, "TOKEN_CACHE", 3)
    for i in range(10):
        tokenizer.tokens(f"第{i}条 专利")
    assert len(tokenizer._cache) <= 3
