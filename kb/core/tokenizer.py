"""The jieba tokeniser shared by BM25, the answerers and validation, with an IP-policy
dictionary (kb/resources/domain_words.txt) and a stop list (stopwords.txt).
"""
from __future__ import annotations

import logging
import re
from importlib import resources

_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
TOKEN_CACHE = 20_000  # texts whose tokens are kept: at most about 20 MB with the limit below
TOKEN_CACHE_CHARS = 200  # longer texts (chunks, at build time) are not kept


def _resource_lines(name: str) -> list[str]:
    text = resources.files("kb").joinpath("resources", name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class Tokenizer:
    """jieba words plus every dictionary word inside them (a fuller search mode), own jieba
    instance with the domain words added, stop words and punctuation dropped.

    jieba's own cut_for_search only adds 2- and 3-character sub-words, so 专利质押贷款 would
    not yield 专利质押; here every dictionary word of 2+ characters inside a word is added.
    """

    def __init__(self, extra_words: list[str] | None = None):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self.subjects = frozenset(w.lower() for w in _resource_lines("subject_terms.txt"))
        for word in _resource_lines("domain_words.txt") + sorted(self.subjects) + list(extra_words or []):
            self._jieba.add_word(word)
        self.stopwords = frozenset(_resource_lines("stopwords.txt"))
        self._tagger = None
        self._cache: dict[str, tuple[str, ...]] = {}  # text -> tokens, bounded (TOKEN_CACHE)

    def places(self, text: str) -> list[str]:
        """Place names (jieba's ns tag), e.g. 杭州, 上海浦东, 浙江省."""
        if self._tagger is None:  # loading the tag dictionary takes about 0.3 s: once, on first use
            from jieba import posseg

            self._tagger = posseg.POSTokenizer(tokenizer=self._jieba)
        return [w.word for w in self._tagger.lcut(text) if w.flag.startswith("ns") and len(w.word) >= 2]

    def _with_sub_words(self, word: str) -> list[str]:
        if len(word) <= 2:
            return [word]
        freq = self._jieba.FREQ
        subs = [word[i:j] for i in range(len(word)) for j in range(i + 2, len(word) + (i > 0))
                if freq.get(word[i:j])]
        return subs + [word]

    def words(self, text: str) -> list[str]:
        """jieba's own words (no sub-words) of 2+ characters, stop words dropped: a question's terms as written."""
        self._jieba.check_initialized()
        return [w for w in (x.strip().lower() for x in self._jieba.cut(text))
                if len(w) >= 2 and _WORD.search(w) and w not in self.stopwords]

    def tokens(self, text: str) -> list[str]:
        """Search tokens. The same passage sentences are tokenised for every answer, so up to TOKEN_CACHE
        texts of at most TOKEN_CACHE_CHARS are remembered (on the sample KB: 52 → 36 ms an answer)."""
        if len(text) > TOKEN_CACHE_CHARS:  # a chunk at build time: read once
            return list(self._cut(text))
        cached = self._cache.get(text)
        if cached is None:
            cached = self._cut(text)
            if len(self._cache) >= TOKEN_CACHE:
                self._cache.clear()  # atomic, unlike evicting one entry while other threads read
            self._cache[text] = cached
        return list(cached)

    def _cut(self, text: str) -> tuple[str, ...]:
        self._jieba.check_initialized()
        out = []
        for word in self._jieba.cut(text):
            for token in self._with_sub_words(word.strip().lower()):
                if token and _WORD.search(token) and token not in self.stopwords:
                    out.append(token)
        return tuple(out)
