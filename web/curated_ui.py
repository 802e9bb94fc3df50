"""The UI of curated answers (标准口径): "保存为标准口径" under a chat answer, and the 标准口径 tab (list with the
flagged ones first, edit, delete, import, export). Thin over KnowledgeService (web/service/curated.py)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from kb.core.errors import AdminError, KbError, UploadError
from kb.curated.records import FLAG_LABELS, CuratedEntry
from web.service import KnowledgeService

HEADERS = ["编号", "状态", "问题", "其他问法", "标准答复", "依据", "审定", "命中"]
SOURCE_HINT = "每行一条：文件名｜原文"


def entry_rows(entries: list[CuratedEntry]) -> list[list]:
    return [[e.id, ("待复核：" + "；".join(FLAG_LABELS[f] for f in e.flags)) if e.flags else "有效", e.question,
             "\n".join(e.variants), e.answer, "\n".join(f"{s.file}｜{s.quote}" for s in e.sources),
             f"{e.approved_by} {e.approved_at}", e.hits] for e in entries]


def sources_text(sources: list[dict]) -> str:
    return "\n".join(f"{s['file']}｜{s['quote']}" for s in sources)


def parse_sources(text: str) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        if line.strip():
            file, sep, quote = line.replace("|", "｜", 1).partition("｜")
            if not sep:
                raise KbError(f"依据应为“文件名｜原文”：{line.strip()[:40]}")
            out.append({"file": file.strip(), "quote": quote.strip()})
    return out


def _client(request: gr.Request | None) -> str:
    return str(getattr(getattr(request, "client", None), "host", "") or "")


def _entry_data(question, variants, answer, sources, approved_by, review_date) -> dict:
    return {"question": question or "", "variants": [v.strip() for v in (variants or "").splitlines() if v.strip()],
            "answer": answer or "", "sources": parse_sources(sources), "approved_by": approved_by or "",
            "review_date": (review_date or "").strip()}


def chat_controls(service: KnowledgeService, last: gr.State) -> None:
    """Under the chat: pre-fill an entry from the last answer, then save it with the admin password."""
    with gr.Accordion("保存为标准口径（管理员）", open=False, elem_id="ipkb-curate"):
        fill = gr.Button("用上一条答案预填", size="sm", elem_id="ipkb-curate-fill")
        question = gr.Textbox(label="问题", elem_id="ipkb-curate-question")
        variants = gr.Textbox(label="其他问法（每行一个）", lines=2, elem_id="ipkb-curate-variants")
        answer = gr.Textbox(label="标准答复", lines=4, elem_id="ipkb-curate-answer")
        sources = gr.Textbox(label=f"依据（{SOURCE_HINT}）", lines=3, elem_id="ipkb-curate-sources")
        with gr.Row():
            approved_by = gr.Textbox(label="审定人", elem_id="ipkb-curate-by")
            password = gr.Textbox(label="管理员密码", type="password", elem_id="ipkb-curate-password")
        save = gr.Button("保存为标准口径", variant="primary", elem_id="ipkb-curate-save")
        said = gr.Markdown(elem_id="ipkb-curate-said")

        def prefill(state: dict | None):
            if not state:
                return gr.skip(), gr.skip(), gr.skip(), "请先提问，再保存答案。"
            draft = service.curated_draft(state)
            return draft["question"], draft["answer"], sources_text(draft["sources"]), ""

        def store(password, question, variants, answer, sources, approved_by, request: gr.Request) -> str:
            try:
                data = _entry_data(question, variants, answer, sources, approved_by, "")
                entry_id = service.save_curated(password, data, 0, _client(request))
            except (AdminError, KbError) as exc:
                return f"⚠️ {exc}"
            return f"已保存为标准口径（第 {entry_id} 条）。"

        fill.click(prefill, [last], [question, answer, sources, said], api_name=False)
        save.click(store, [password, question, variants, answer, sources, approved_by], said, api_name=False)


def curated_tab(service: KnowledgeService) -> None:
    """The 标准口径 tab: every entry, flagged ones (待复核) first; edit, delete, import, export."""
    def rows():
        return entry_rows(service.curated_entries())

    with gr.Tab("标准口径"):
        gr.Markdown("经审定的标准答复。依据文件变更、删除、过期或被取代时标为“待复核”，不再作为标准口径答复。")
        table = gr.Dataframe(value=rows(), headers=HEADERS, interactive=False, wrap=True, label="标准口径",
                             elem_id="ipkb-curated-table")
        refresh = gr.Button("刷新", size="sm")
        password = gr.Textbox(label="管理员密码", type="password", elem_id="ipkb-curated-password")
        with gr.Row():
            entry_id = gr.Number(label="编号（0 = 新增）", value=0, precision=0, elem_id="ipkb-curated-id")
            load = gr.Button("载入所选编号", size="sm")
        question = gr.Textbox(label="问题")
        variants = gr.Textbox(label="其他问法（每行一个）", lines=2)
        answer = gr.Textbox(label="标准答复", lines=4)
        sources = gr.Textbox(label=f"依据（{SOURCE_HINT}）", lines=3)
        with gr.Row():
            approved_by = gr.Textbox(label="审定人")
            review_date = gr.Textbox(label="复核日期（可选，YYYY-MM-DD）")
        with gr.Row():
            save = gr.Button("保存", variant="primary")
            delete = gr.Button("删除", variant="stop")
        with gr.Row():
            upload = gr.File(label="导入（JSONL 或 Excel）", file_types=[".jsonl", ".xlsx"])
            import_btn = gr.Button("导入")
            export_jsonl = gr.Button("导出 JSONL")
            export_xlsx = gr.Button("导出 Excel")
        download = gr.File(label="下载", interactive=False)
        said = gr.Markdown(elem_id="ipkb-curated-said")

        def loaded(n):
            entry = service.curated_entry(int(n or 0))
            if entry is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"没有第 {n} 条。"
            return (entry.question, "\n".join(entry.variants), entry.answer,
                    sources_text([s.to_json() for s in entry.sources]), entry.approved_by, entry.review_date, "")

        def saved(password, n, question, variants, answer, sources, approved_by, review_date, request: gr.Request):
            try:
                data = _entry_data(question, variants, answer, sources, approved_by, review_date)
                done = service.save_curated(password, data, int(n or 0), _client(request))
            except (AdminError, KbError) as exc:
                return f"⚠️ {exc}", gr.skip()
            return f"已保存第 {done} 条。", rows()

        def deleted(password, n, request: gr.Request):
            try:
                gone = service.delete_curated(password, int(n or 0), _client(request))
            except AdminError as exc:
                return f"⚠️ {exc}", gr.skip()
            return (f"已删除第 {n} 条。" if gone else f"没有第 {n} 条。"), rows()

        def imported(password, file, request: gr.Request):
            from web.ui import uploaded_path

            if not file:
                return "请选择要导入的文件。", gr.skip()
            try:
                ids = service.import_curated(password, uploaded_path(file), _client(request))
            except (AdminError, KbError, UploadError) as exc:
                return f"⚠️ {exc}", gr.skip()
            return f"已导入 {len(ids)} 条。", rows()

        def exported(suffix: str):
            folder = Path(tempfile.mkdtemp(prefix="ipkb-curated-"))
            return str(service.export_curated(folder / f"标准口径{suffix}"))

        refresh.click(rows, None, table, api_name=False)
        load.click(loaded, [entry_id], [question, variants, answer, sources, approved_by, review_date, said], api_name=False)
        save.click(saved, [password, entry_id, question, variants, answer, sources, approved_by, review_date],
                   [said, table], api_name=False)
        delete.click(deleted, [password, entry_id], [said, table], api_name=False)
        import_btn.click(imported, [password, upload], [said, table], api_name=False)
        export_jsonl.click(lambda: exported(".jsonl"), None, download, api_name=False)
        export_xlsx.click(lambda: exported(".xlsx"), None, download, api_name=False)


def review_list(service: KnowledgeService) -> str:
    """For 知识库: the curated entries to review (待复核) first, then how often each document was cited."""
    entries = service.curated_entries()
    flagged = [e for e in entries if e.flags]
    lines = [f"**标准口径**：{len(entries)} 条，其中待复核 {len(flagged)} 条。"]
    lines += [f"- ⚠️ 第 {e.id} 条“{e.question}”：{'；'.join(FLAG_LABELS[f] for f in e.flags)}" for e in flagged]
    hits = sorted(service.document_hits().items(), key=lambda kv: -kv[1])
    if hits:
        lines.append("\n**文件被引用次数**：" + "；".join(f"{name} {n} 次" for name, n in hits[:20]))
    return "\n".join(lines)


def knowledge_extras(service: KnowledgeService) -> None:
    """Inside the 知识库 tab."""
    shown = gr.Markdown(review_list(service), elem_id="ipkb-curated-review")
    gr.Button("刷新标准口径状态", size="sm").click(lambda: review_list(service), None, shown, api_name=False)


GAP_HEADERS = ["序号", "次数", "代表问题", "其他问法", "原因", "首次出现", "最近出现", "最接近的段落"]


def gaps_tab(service: KnowledgeService) -> None:
    """The 缺口 tab (admin): what the knowledge base failed to answer, grouped by meaning; an Excel export;
    a group drafted into a curated entry in one click (then completed and saved)."""
    from kb.curated.gaps import REASON_LABELS, write_gap_report

    with gr.Tab("缺口"):
        gr.Markdown("知识库未能回答、被点踩或把握不大的问题，按含义分组（只保存问题本身，不保存提问人；"
                    f"保存 {service.settings.answer.gap_retention_days} 天）。")
        password = gr.Textbox(label="管理员密码", type="password", elem_id="ipkb-gaps-password")
        with gr.Row():
            show = gr.Button("生成缺口报告", variant="primary", elem_id="ipkb-gaps-show")
            export = gr.Button("导出 Excel")
        table = gr.Dataframe(headers=GAP_HEADERS, interactive=False, wrap=True, label="知识缺口", elem_id="ipkb-gaps-table")
        download = gr.File(label="下载", interactive=False)
        with gr.Row():
            number = gr.Number(label="序号", value=1, precision=0)
            draft = gr.Button("起草标准口径", elem_id="ipkb-gaps-draft")
        question = gr.Textbox(label="问题")
        variants = gr.Textbox(label="其他问法（每行一个）", lines=3)
        answer = gr.Textbox(label="标准答复（请填写）", lines=4)
        sources = gr.Textbox(label=f"依据（{SOURCE_HINT}）", lines=3)
        approved_by = gr.Textbox(label="审定人")
        save = gr.Button("保存为标准口径", variant="primary")
        said = gr.Markdown(elem_id="ipkb-gaps-said")
        groups = gr.State([])

        def report(password, request: gr.Request):
            try:
                found = service.gap_report(password, _client(request))
            except AdminError as exc:
                return f"⚠️ {exc}", gr.skip(), []
            rows = [[n, g.count, g.representative, "\n".join(e for e in g.examples if e != g.representative),
                     "；".join(f"{REASON_LABELS.get(r, r)} {c}" for r, c in g.reasons.items()), g.first_seen,
                     g.last_seen, "\n".join(g.passages)] for n, g in enumerate(found, 1)]
            return f"共 {len(found)} 组、{sum(g.count for g in found)} 个问题。", rows, found

        def exported(password, found, request: gr.Request):
            try:
                found = found or service.gap_report(password, _client(request))
            except AdminError as exc:
                return f"⚠️ {exc}", None
            folder = Path(tempfile.mkdtemp(prefix="ipkb-gaps-"))
            return "", str(write_gap_report(found, folder / "知识缺口.xlsx"))

        def drafted(n, found):
            n = int(n or 0)
            if not found or not 1 <= n <= len(found):
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), "请先生成报告，并填写有效的序号。"
            d = service.gap_draft(found[n - 1])
            return d["question"], "\n".join(d["variants"]), sources_text(d["sources"]), "", "已起草：请填写标准答复、核对依据后保存。"

        def stored(password, question, variants, answer, sources, approved_by, request: gr.Request) -> str:
            try:
                entry_id = service.save_curated(password, _entry_data(question, variants, answer, sources, approved_by, ""),
                                                0, _client(request))
            except (AdminError, KbError) as exc:
                return f"⚠️ {exc}"
            return f"已保存为标准口径（第 {entry_id} 条）。"

        show.click(report, [password], [said, table, groups], api_name=False)
        export.click(exported, [password, groups], [said, download], api_name=False)
        draft.click(drafted, [number, groups], [question, variants, sources, answer, said], api_name=False)
        save.click(stored, [password, question, variants, answer, sources, approved_by], said, api_name=False)
