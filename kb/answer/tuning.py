"""Every threshold and weight of the answer heuristics, in one place. Pure data.

Unless its comment says otherwise, a value was calibrated on eval/testsets/sample.jsonl over the
sample corpus with bench/answers.py (keypoint recall, refusals of the unanswerable questions by
kind, false refusals); eval/testsets/shared-pdfs.jsonl, written afterwards by another hand, is the
check. Changing a value changes what IPKB answers and what it refuses: measure again with
bench/answers.py and `python -m eval run --floors eval/floors.toml` before keeping it.
tests/test_extractive.py, test_intent.py and test_tuning.py show, for each value, a case whose
outcome flips when the value crosses the score measured for it (min_retrieved: tests/test_answers.py).

Not here, on purpose:
  - `answer_passages` (how many of the retrieved passages the answerers read) is a user setting:
    kb/core/settings.py;
  - text rules, such as "a quotable sentence has at least 4 characters" (kb/core/guard.py) and
    "an answer sentence under 4 characters is not checked" (kb/answer/validation.py).

`Answerer(..., tuning=Tuning(min_coverage=0.15))` tries another value; the default is the
calibrated one everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    # --- Retrieval for answering (kb/answer/answerer.py) ---------------------------------------
    # At least this many passages are retrieved for an answer (max(this, settings.answer.top_k)): the
    # answerers read the first settings.answer.answer_passages; the rest are shown to staff with a
    # refusal and let the place check (extractive) skip passages about another place. Not a
    # calibrated value: the number of closest passages a refusal offers.
    min_retrieved: int = 10
    # A question answered for the deployment's home place (the `home_region` setting: it names no place,
    # the asker gave none) ranks the home city's documents first, then its province's, then national
    # ones, as that city's hotline would: a passage's score counts (1 + boost) of itself. Calibrated on
    # sample.jsonl and policies.jsonl over the bundled corpus with its law library (home 宁波), with
    # policies.jsonl over the 18 documents and library.jsonl as the checks (docs/evaluation.md).
    # Swept with 0/0, 0.1/0.05, 0.3/0.1, 0.6/0.2 (city/province): sample hit@1 0.59 → 0.65 → 0.67 → 0.71,
    # policies 0.574 → 0.566 from 0.1 on, library 0.638 → 0.623 → 0.623 → 0.609: 0.3 keeps the library's.
    # Since 2026-12-06 also for the asker's place and the place a question names (the same order serves a
    # question from 宁波 as one answered for home): hit@1 0.787 → 0.795 (policies, 18 documents), 0.705 → 0.721
    # (policies, bundled), library 0.812 → 0.855 (its check), sample unchanged.
    home_city_boost: float = 0.3
    # The province's documents, over national ones, for the same sweep.
    home_province_boost: float = 0.1

    # --- Follow-ups (kb/answer/intent.py, is_follow_up) ---------------------------------------
    # A question with at most this many content terms (jieba tokens, stop words dropped) leans on
    # the previous question even without 那…/…呢: "保险？" after a question about loans.
    # Calibrated on the follow-up tests of tests/test_answers.py (sample.jsonl has no conversations).
    follow_up_max_terms: int = 1

    # --- Extractive answerer: weighing the question's terms (kb/answer/extractive.py) ----------
    # Lowest weight (IDF) of a question term: a term found in every chunk — the title's, in a
    # one-document knowledge base — still shows the question is about these documents.
    idf_floor: float = 1.0
    # A single-character term (保, 费…) weighs this share of a word's weight: alone it says little.
    single_char_weight: float = 0.5
    # A term found only in the passage's title or section heading, not in the sentence itself,
    # counts this share of its weight (coverage = sentence + this × what the heading adds).
    heading_weight: float = 0.5
    # A follow-up ("那保险呢？") is scored together with the earlier question: all the earlier
    # question's terms together weigh this share of the follow-up's own terms. Calibrated on the
    # follow-up tests of tests/test_answers.py.
    context_weight: float = 0.3
    # Off topic ("医保异地就医怎么备案？"): no passage is close to the question in e5 (cosine below
    # off_topic_dense) and no sentence covers much of it (below off_topic_coverage). Calibrated on the
    # off_topic questions of policies.jsonl and sample.jsonl over the bundled corpus (their best
    # passage: 0.845–0.878; answerable ones 0.875 and up, or they cover more).
    off_topic_dense: float = 0.88
    # The coverage below which a question far from every passage is off topic (see off_topic_dense).
    off_topic_coverage: float = 0.25
    # A follow-up with no answer before it in the history stays with the documents of this many best
    # passages of the previous question. Chosen on the follow-ups of eval/testsets/policies.jsonl.
    follow_up_documents: int = 2
    # A question names a document by the end of its title when it holds at least this many of its
    # last characters ("…促进科技创新产业发展扶持办法"): shorter tails ("专利保护条例") are shared by
    # many titles. Chosen on the validity questions of eval/testsets/policies.jsonl.
    title_tail: int = 8

    # --- Extractive answerer: scoring a sentence --------------------------------------------
    # score = coverage + dense_weight × cosine(question, sentence) + value_bonus (when the sentence
    # holds the kind of fact asked for) + rank_bonus / passage rank.
    # Weight of the e5 similarity of the sentence to the question (0 when no embedder is given).
    dense_weight: float = 0.5
    # Sentences that get a dense score: the best-covering ones; the rest count as the least similar
    # of those. Bounds the sentences embedded per question (answering embeds them, through the
    # cache). Chosen on all three test sets together (bench/answers.py).
    dense_candidates: int = 6
    # A list or yes/no question quotes the best sentence of each document that answers nearly as well,
    # up to this many documents (city, province, national). Chosen on eval/testsets/policies.jsonl.
    max_documents: int = 3
    # Taken off the score of a sentence from a document no longer in force (expired, superseded,
    # abolished): where a current version states the same, its sentence scores higher. Small, so a
    # fact only the old document states is still quoted (with its validity notice).
    stale_penalty: float = 0.05
    # Added when the sentence states the kind of fact the question asks for (number, date…).
    value_bonus: float = 0.25
    # rank_bonus / rank is added: between equal sentences, the better-ranked passage wins.
    rank_bonus: float = 0.02
    # passage_weight × (the passage's retrieval score / the first read passage's, at most 1) × (the sentence's
    # coverage / the best coverage of any sentence) is added: retrieval (the learned ranker) read the whole
    # passage, the sentence score only the sentence's words, and a sentence of the fifth passage sharing a few
    # more of the question's words beat the first passage's answer; scaled by coverage so that a sentence of the
    # first passage covering little of the question ("上年度营业收入不超过4亿元" for "一家企业最多能补多少钱") is
    # not made the answer by its passage's rank. Not read by the refusal rules (they judge the sentences by their
    # words alone): refusals unchanged. Calibrated 2026-12-06 on policies.jsonl (18 documents and the bundled
    # corpus) and sample.jsonl (the letter alone and the bundled corpus), library.jsonl the check. Unscaled,
    # 0.5 gave keypoint recall 0.803 / 0.788 on policies but failed that question and lost 0.034 on the letter
    # alone; scaled, 0.5 / 0.8 / 1.2: keypoint recall 0.775 / 0.791 / 0.775 (policies, 18 documents), 0.762 /
    # 0.746 / 0.730 (policies, bundled), citation precision 0.705 / 0.733 / 0.745 and 0.696 / 0.706 / 0.723;
    # at 0.8 against 0: keypoint recall 0.779 → 0.791, 0.746 → 0.746, sample 0.918 → 0.918 (bundled), 0.952 →
    # 0.939 (letter), library 0.754 → 0.797; citation precision up on every set (0.658 → 0.733, 0.611 → 0.706,
    # 0.780 → 0.840, 0.861 → 0.896, library 0.628 → 0.750).
    passage_weight: float = 0.8
    # Taken off the quoting score, times the share of the question a sentence covers only by repeating its
    # document's title words ("政策依据《山西转型综合改革示范区…扶持办法》" in every record of the 山西 示范区
    # 政策兑现清单): every sentence of the document is credited those words already (heading_weight), and a
    # sentence that names the title says which document, not what the question asks. Quoting only: the refusal
    # rules still read the coverage. Set to 1 − heading_weight (a repeated title word then counts as a heading word
    # does), not swept; measured 2026-12-06 with the changes of that evening (labels on lines of their own, the
    # paragraph of a yes/no rule): policies keypoint recall 0.811 → 0.878 on the 18 documents and on the bundled
    # corpus, citation precision up on all four sets (library, sample the checks: keypoint recall unchanged).
    # Its cost, held out (shared-pdfs, bench/answers.py): one unanswerable question more answered (3/4 refused),
    # a figure of another thing now the best sentence over a sentence that only repeats the report's title.
    title_echo: float = 0.5

    # --- Extractive answerer: refusing ------------------------------------------------------
    # The best sentence must hold at least this share of the question's weighted terms, else the
    # documents do not answer (off-topic). Off-topic questions of sample.jsonl share almost no
    # weighted terms with any sentence; colloquial answerable ones share 0.12 and up.
    min_coverage: float = 0.1
    # A sentence holding the asked-for fact must also cover this much of the question to count —
    # it must be about the question, not just hold some date or figure — and a sentence after
    # the best one must cover this much to be quoted with it.
    value_coverage: float = 0.2
    # …or, when no sentence covers the question that much (a colloquial question in words the documents
    # do not use: "一家企业最多能补多少钱？" against "贴息金额不超过100万元"), at least this share of the
    # best coverage any sentence has. Chosen on policies.jsonl over the bundled corpus (2026-12-06): at
    # 0.9 "商标局一般多长时间审完" (1.0 of the best) and "南沙…一家企业最多能补多少钱" (0.99) are answered
    # and no unanswerable question more is; sample.jsonl unchanged.
    value_relative: float = 0.9
    # The asked-for fact must be in one of the best `value_window` sentences, else the question
    # is refused as "the topic is there, the fact is not" (贴息比例, 保费补贴金额).
    value_window: int = 8

    # --- Extractive answerer: composing the answer ------------------------------------------
    # Further sentences are quoted only when they score at least this share of the best one.
    keep_ratio: float = 0.8
    # At most this many sentences are quoted…
    max_sentences: int = 3
    # …and further sentences only while the quoted text stays within this many characters
    # (the best sentence is always quoted, whatever its length).
    max_chars: int = 200

    # A question about materials, a procedure or conditions whose best sentence stands in a list
    # section (its heading, then numbered items) gets the section whole and in order when its text
    # is at most this many characters; a longer one is quoted as above. Chosen on the 办事指南 of
    # eval/testsets/policies.jsonl: its 申请材料 (580 characters) and 办理流程 (662) fit.
    list_max_chars: int = 700

    # The best sentence's passage is a whole article of a law (第四十条 ……) of at most this many
    # characters: the article is quoted whole, the unit a law is read in. Chosen on policies.jsonl
    # (keypoint recall 0.701 / 0.713 / 0.717 at 150 / 250 / 400; sample and shared-pdfs hold no articles).
    article_max_chars: int = 250
    # A yes/no question ("能申请吗", "还能再领吗") quotes the best sentence with the rest of its paragraph when the
    # paragraph is at most this many characters: a rule is answered with its exceptions ("…不可同时申报。对于获得
    # 奖励后又被认定为更高级别的称号的，给予差额奖励。", "…方可申请奖励。非职务发明和购买专利的不予以奖励。").
    # Set to max_chars (the quote's budget), not swept; on policies.jsonl it completes three 山西 records' 备注
    # (18 documents and bundled, 2026-12-06); sample.jsonl and library.jsonl: keypoint recall unchanged.
    yesno_paragraph_chars: int = 200

    # --- Citation checks of LLM answers (kb/answer/validation.py) -----------------------------
    # A passage supports an answer sentence when one of its sentences (with the passage's title,
    # issuer and section), or the passage as a whole, holds at least this share of the answer
    # sentence's content terms (and every number and place the sentence states). Checked with
    # bench/answers.py (every extractive answer of both test sets is supported: 48/48, 36/36)
    # and the paraphrases of tests/test_validation.py.
    support: float = 0.7

    # --- Recognising an LLM's refusal (kb/answer/llm.py) --------------------------------------
    # The model refused when its reply (whitespace removed) contains the first
    # `refusal_prefix_chars` characters of the refusal text (prompts/refusal.txt)…
    refusal_prefix_chars: int = 10
    # …or is itself a part of the refusal text at least this long (a cut-off refusal). Text rules
    # for prompts/refusal.txt, not calibrated on a test set.
    refusal_min_chars: int = 6

    # --- Never worse than extractive (kb/answer/stages.py, ChooseStage) ------------------------
    # With an LLM configured the extractive answer is computed too (about 20 ms) and the user gets
    # the better of the two. The LLM's answer is set aside for the extractive one when, the
    # extractive answerer having answered, the LLM refused or none of its sentences held, or:
    # more than this share of its sentences were dropped (no marker, or not supported by the
    # passage they cite) — the model did not stay with the passages on this question…
    llm_max_dropped: float = 0.5
    # …or its answer covers the question's IDF-weighted terms (the extractive answerer's coverage,
    # markers removed) by more than this much less than the extractive answer does: it left out
    # what was asked. Checked with bench/llm.py (Qwen2.5-Coder-1.5B Q4_K_M on sample.jsonl).
    llm_coverage_margin: float = 0.25
    # (Not a threshold: the question asks for a number, date, amount… that the extractive answer
    # states and the LLM's answer does not — the extractive one stands. And when the extractive
    # answerer refuses, an LLM answer without the asked-for kind of fact is refused too.)
