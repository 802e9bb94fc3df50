"""HTML for people: cited passages, search results, the document list. Pure functions.

Every text from a document or an answer is HTML-escaped here, so a document containing
`<script>` or a Markdown image pointing elsewhere shows as plain text and loads nothing.
The only links are to this app's own /files/ route.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

from eval.gate import applies
from kb.core.citations import pages_text, profile_text
from kb.core.profile import DocumentProfile
from kb.core.records import Answer, Citation, Document, Passage

CSS = """
.ipkb-card { border: 1px solid #d9d9d9; border-radius: 8px; padding: 10px 12px; margin: 8px 0; background: #fff; }
.ipkb-card .src { font-size: 0.9em; color: #555; margin-bottom: 6px; }
.ipkb-card .text { white-space: pre-wrap; line-height: 1.6; }
.ipkb-card mark { background: #fff2a8; padding: 0 1px; }
.ipkb-refused { border-left: 4px solid #d46b08; background: #fff7e6; padding: 8px 12px; margin: 6px 0; }
.ipkb-notice { border-left: 4px solid #1677ff; background: #e6f4ff; padding: 6px 12px; margin: 6px 0; }
.ipkb-profile { color: #08979c; }
.ipkb-n { display: inline-block; min-width: 1.6em; font-weight: bold; color: #1677ff; }
"""


def e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def file_link(doc_id: str, source: str, pages: list[int]) -> str:
    """A link that opens the original file, at the page for PDFs."""
    anchor = f"#page={pages[0]}" if pages and source.lower().endswith(".pdf") else ""
    return f'<a href="/files/{quote(doc_id, safe="")}{anchor}" target="_blank" rel="noopener">打开原文</a>'


def highlighted(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        start = max(start, last)  # overlapping spans are merged, not dropped
        if end <= start:
            continue
        out += [e(text[last:start]), "<mark>", e(text[start:end]), "</mark>"]
        last = end
    out.append(e(text[last:]))
    return "".join(out)


def _meta_line(title: str, doc_number: str | None, date: str | None, pages: list[int], section: list[str],
               profile: DocumentProfile) -> str:
    parts = [f"《{e(title)}》", f'<span class="ipkb-profile">{e(profile_text(profile))}</span>']
    if doc_number:
        parts.append(e(doc_number))
    if date:
        parts.append(f"成文日期 {e(date)}")
    if pages:
        parts.append(e(pages_text(pages)))
    if section:
        parts.append(e(" › ".join(section)))
    return " · ".join(parts)


def citation_card(c: Citation, doc_id: str) -> str:
    return (f'<div class="ipkb-card" data-chunk="{e(c.chunk_id)}"><div class="src"><span class="ipkb-n">[{c.n}]</span>'
            f'{_meta_line(c.title, c.doc_number, c.date, c.pages, c.section, c.profile)} · {file_link(doc_id, c.source, c.pages)}'
            f'</div><div class="text">{highlighted(c.text, c.spans)}</div></div>')


def passage_card(p: Passage, note: str = "") -> str:
    return (f'<div class="ipkb-card" data-chunk="{e(p.chunk_id)}"><div class="src"><span class="ipkb-n">#{p.rank}</span>'
            f'{_meta_line(p.title, p.doc_number, p.date, p.pages, p.heading_path, p.profile)} · '
            f'{file_link(p.doc_id, p.source, p.pages)}{e(note)}</div><div class="text">{e(p.text)}</div></div>')


def answer_panel(answer: Answer) -> str:
    """Under an answer: its notices, then its cited passages; for a refusal, the closest passages."""
    parts = [f'<div class="ipkb-notice">{e(n)}</div>' for n in answer.notices]
    doc_of = {p.chunk_id: p.doc_id for p in answer.passages}
    if answer.refused:
        parts.append('<div class="ipkb-refused"><b>未找到可回答的内容。</b>以下是最接近的段落，仅供参考，'
                     '不构成答复。</div>')
        parts += [passage_card(p) for p in answer.passages[:3]]
    else:
        parts.append(f"<h4>引用的段落（{len(answer.citations)}）</h4>")
        parts += [citation_card(c, c.doc_id or doc_of.get(c.chunk_id, "")) for c in answer.citations]
    return "".join(parts)


def chat_text(answer: Answer) -> str:
    """The chat bubble: the answer, and a visible mark when it is a refusal. Escaped: Gradio's
    Chatbot renders its messages as (sanitised) HTML even with Markdown off, so an unescaped
    `<img src="http://…">` quoted from a document would be fetched by the reader's browser."""
    return f"⚠️ 未找到答案\n{e(answer.answer)}" if answer.refused else e(answer.answer)


def search_results(passages: list[Passage]) -> str:
    if not passages:
        return '<div class="ipkb-refused">没有找到相关段落。</div>'
    return "".join(passage_card(p, note=f" · 相关度 {p.score:.3f}") for p in passages)


def read_aloud(answer: Answer) -> str:
    """What hotline staff read out: the answer, then where it comes from, in one line each."""
    if answer.refused or not answer.citations:
        return answer.answer
    body = re.sub(r"\[\d+\]", "", answer.body)  # read aloud: no [n] markers
    pages: dict[tuple[str, str], list[int]] = {}  # each document once, with all its cited pages
    for c in answer.citations:
        pages.setdefault((c.title, c.doc_number or ""), []).extend(p for p in c.pages
                                                                    if p not in pages.get((c.title, c.doc_number or ""), []))
    sources = "；".join(f"《{title}》" + (f"（{number}）" if number else "") + (pages_text(sorted(ps)) or "")
                       for (title, number), ps in pages.items())
    return f"{body}\n出处：{sources}"


def contact_line(bureau: str, hotline: str) -> str:
    """The header's 咨询 line: the bureau and hotline from the settings (Markdown, escaped); empty when neither is set."""
    parts = ([f"咨询部门：{e(bureau.strip())}"] if bureau.strip() else []) + (
        [f"热线：{e(hotline.strip())}"] if hotline.strip() else [])
    return "　".join(parts)


def issuer_groups(issuers: list[str], places) -> dict[str, list[str]]:
    """Issuers that are the same organ under different names ("洪泽区人民政府", "淮安市洪泽区人民政府":
    the same place path by kb.core.places.Places and the same organ after the place name), as
    {the shortest name: every name}, sorted by that name."""
    groups: dict[object, list[str]] = {}
    for issuer in sorted(set(filter(None, issuers))):
        key: object = issuer
        paths = places.places_in(issuer)
        deepest = max(paths, key=len) if paths else None
        if deepest and all(deepest[: len(p)] == p for p in paths):
            last = deepest[-1]
            at = issuer.rfind(last)
            if at >= 0:
                key = (deepest, issuer[at + len(last):])
        groups.setdefault(key, []).append(issuer)
    named = {min(names, key=lambda n: (len(n), n)): sorted(names) for names in groups.values()}
    return dict(sorted(named.items()))


def job_status(message: str, fraction: float, running: bool, errors: list[str], skipped: list[str] = ()) -> str:
    """The background ingestion: a progress bar, what it is doing, each failed file's reason and
    each duplicate skipped."""
    bar = f'<progress value="{fraction:.3f}" max="1" style="width: 20em"></progress>' if running else ""
    items = "".join(f"<li>⚠️ {e(err)}</li>" for err in errors) + "".join(
        f"<li>已跳过重复文件：{e(name)}</li>" for name in skipped)
    return (f'<div class="ipkb-job"><b>索引任务</b>：{e(message)}（{fraction * 100:.0f}%） {bar}'
            + (f"<ul>{items}</ul>" if items else "") + "</div>")


def job_outcome(message: str, added: list[str], skipped: list[str], errors: list[str],
                unchanged: list[str] = ()) -> str:
    """What a finished ingestion did, in place of “正在后台建立索引” (Markdown, escaped)."""
    parts = [f"索引任务{e(message)}。"]
    if added:
        parts.append(f"已建立索引 {len(added)} 个文件：{e('、'.join(added))}。")
    if skipped:
        parts.append(f"跳过 {len(skipped)} 个重复文件（未重复建立索引，上传的副本已删除）：{e('、'.join(skipped))}。")
    if unchanged:
        parts.append(f"{len(unchanged)} 个文件已在知识库中且内容未变，未重新建立索引：{e('、'.join(unchanged))}。")
    if errors:
        parts.append(f"{len(errors)} 个文件失败，见上方索引任务。")
    return "".join(parts)


# The 评测 report: each metric in Chinese, what it measures, and its floor or ceiling (eval/floors.toml).
EVAL_METRICS = [
    ("retrieval.hit@5", "检索命中率（前5）", "可回答的问题中，前5个检索结果里有含标准依据段落的比例"),
    ("retrieval.MRR@10", "平均倒数排名（前10）", "标准依据段落在检索结果中排得越靠前越高（第1位为1，第2位为1/2……）"),
    ("answers.keypoint_recall", "要点召回率", "可回答的问题中，答案覆盖了标准答案要点的比例"),
    ("answers.all_keypoints", "要点全覆盖率", "答案覆盖了全部要点的问题所占比例"),
    ("answers.citation_precision", "引用准确率", "答案引用的段落确实是依据段落的比例"),
    ("refusals.refusal_recall", "拒答召回率", "不可回答的问题中，系统正确拒答的比例"),
    ("refusals.false_refusal_rate", "误拒率", "可回答的问题中，系统却拒答的比例（越低越好）"),
]


def eval_report(metrics: dict, limits: dict, testset: str, documents: int, chunks: int) -> str:
    """The 评测 tab's report in Chinese (Markdown): the knowledge base it ran against, and one row per
    metric with its value, its limit and 通过/未通过, and what it measures."""
    def value(dotted: str) -> float | None:
        node = metrics
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node)

    floors, ceilings = limits.get("floors", {}), limits.get("ceilings", {})
    rows, failed = [], 0
    for key, name, meaning in EVAL_METRICS:
        v = value(key)
        if not applies(metrics, key):  # e.g. refusal recall of a set with no unanswerable question
            rows.append(f"| {name} | — | — | 不适用 | {meaning}（本测试集没有这类问题） |")
            continue
        if key in floors:
            limit, ok = f"≥ {floors[key]}", v is not None and v >= floors[key]
        elif key in ceilings:
            limit, ok = f"≤ {ceilings[key]}", v is not None and v <= ceilings[key]
        else:
            limit, ok = "—", True
        failed += not ok
        verdict = "—" if limit == "—" else "✅ 通过" if ok else "❌ 未通过"
        rows.append(f"| {name} | {'—' if v is None else f'{v:.3f}'} | {limit} | {verdict} | {meaning} |")
    settings = metrics.get("settings", {})
    head = [f"### 评测结果：{'全部达标' if not failed else f'{failed} 项未达标'}",
            f"测试集：{e(Path(testset).name)}（{metrics.get('questions', 0)} 题：可回答 {metrics.get('answerable', 0)}，"
            f"不可回答 {metrics.get('unanswerable', 0)}）",
            f"知识库：{documents} 份文件，{chunks} 个分块；检索方式 {e(settings.get('retrieval_mode', ''))}，"
            f"答案由{'大模型' if settings.get('answerer') == 'llm' else '抽取式'}生成，"
            f"向量模型 {e(settings.get('embedder', ''))}。",
            "", "| 指标 | 数值 | 要求（eval/floors.toml） | 结果 | 含义 |", "|---|---|---|---|---|"]
    latency = metrics.get("latency_ms", {}).get("total", {})
    tail = [f"\n每题耗时：中位数 {latency['p50']:.0f} 毫秒，95% 分位 {latency['p95']:.0f} 毫秒。"] if latency else []
    return "\n".join(head + rows + tail)


def document_rows(documents: list[Document], chunk_counts: dict[str, int],
                  suspicious: dict[str, list[str]] | None = None) -> list[list[object]]:
    """The 知识库 table; a document with sentences kept from answers (suspicious) comes first.

    Only PDFs have pages: a text, Markdown, HTML or Word file shows "—" (its loader reads it as one page)."""
    suspicious = suspicious or {}
    return [[d.meta.title, d.meta.doc_number or "", d.meta.issuer or "", d.meta.date or "", d.meta.doc_type,
             d.profile.level, "".join(d.profile.region) or "未知", d.profile.status, d.profile.effective_from or "",
             d.profile.effective_until or "", d.page_count if d.kind == "pdf" else "—",
             "、".join(map(str, d.ocr_pages)) or "无", chunk_counts.get(d.doc_id, 0),
             suspicious_text(suspicious.get(d.doc_id, [])), d.file_name, d.doc_id]
            for d in sorted(documents, key=lambda d: (d.doc_id not in suspicious, d.file_name))]


def suspicious_text(sentences: list[str], shown: int = 60) -> str:
    """A cell: how many sentences of the document read as instructions or payment demands, and the first."""
    if not sentences:
        return "无"
    first = sentences[0] if len(sentences[0]) <= shown else sentences[0][:shown] + "…"
    return f"⚠️ {len(sentences)} 句（已排除出答案）：{first}"


DOCUMENT_HEADERS = ["标题", "发文字号", "发文机关", "成文日期", "类型", "层级", "适用地区", "状态", "施行日期", "有效期至", "页数", "OCR页", "分块数",
                    "可疑文本", "文件", "ID"]
