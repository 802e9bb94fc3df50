"""The Gradio UI: 咨询 (chat), 检索 (hotline lookup), 知识库 (management), 评测 (evaluation).
Thin over KnowledgeService (web/service/), its one door into the knowledge base; every text shown is
escaped by web/render.py."""
from __future__ import annotations

import functools
import json
import shutil
import tempfile
import threading
import tomllib
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from pydantic import ValidationError

from ingest.loaders import SUPPORTED_SUFFIXES
from kb.core.errors import AdminError, BadTestSetError, KbError, UploadError
from kb.core.profile import LEVELS, STATUSES
from kb.core.records import Answer
from web import render
from web.curated_ui import chat_controls, curated_tab, gaps_tab, knowledge_extras
from web.requests import filters_from, history_from, recent_history
from web.service import KnowledgeService

EXAMPLES = ["专利质押贷款出了坏账谁兜底？", "发明专利被侵权有保险吗？", "宁波成立了哪些知识产权联盟？",
            "这份答复的文号是多少？", "杭州对专利质押贷款有没有贴息？"]
FLOORS = Path(__file__).resolve().parents[1] / "eval" / "floors.toml"
SAMPLE_TESTSET = Path(__file__).resolve().parents[1] / "eval" / "testsets" / "sample.jsonl"
# No CDN: system fonts only (Gradio's default theme would fetch Google Fonts).
THEME = gr.themes.Default(font=["system-ui", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])



IN_PROGRESS = ("正在后台", "已开始重建索引", "索引正在建立中")  # outcomes the status timer replaces when the job ends
EVAL_RUNS = Path(tempfile.gettempdir()) / "ipkb-eval-runs"


def uploaded_path(value) -> Path:
    """The path of a file uploaded through Gradio: only files in Gradio's upload folder are accepted,
    whatever the mounting (mounted with mount_gradio_app, Gradio itself does not check it)."""
    raw = value if isinstance(value, str) else (value.get("path") if isinstance(value, dict)
                                                  else getattr(value, "path", None) or getattr(value, "name", None))
    if not raw:
        raise UploadError("文件无效：请重新上传")
    path = Path(str(raw)).resolve()
    folder = Path(get_upload_folder()).resolve()
    if folder not in path.parents or not path.is_file():
        raise UploadError(f"只接受通过本页面上传的文件（{Path(str(raw)).name} 不是上传的文件）")
    return path


def client_of(request: gr.Request | None) -> str:
    """Who is calling, for the admin-password rate limit: the client's address."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "") or "")


ANY_PLACE = "不限"


def build_ui(service: KnowledgeService) -> gr.Blocks:
    settings = service.settings
    eval_lock = threading.Lock()

    def doc_choices() -> list[tuple[str, str]]:
        return [(f"{d.meta.title}（{d.file_name}）", d.doc_id) for d in service.documents()]

    def type_choices() -> list[str]:
        return sorted({d.meta.doc_type for d in service.documents()})

    def issuer_names() -> dict[str, list[str]]:
        """One choice per issuer, whatever the names it goes by (render.issuer_groups)."""
        return render.issuer_groups([d.meta.issuer for d in service.documents()], service.places)

    def issuer_choices() -> list[str]:
        return list(issuer_names())

    def region_choices() -> list[str]:
        """The places the knowledge base has documents for, most general first; 不限 = no place."""
        regions = {tuple(d.profile.region) for d in service.documents()} - {(), ("全国",)}
        return [ANY_PLACE] + ["".join(r) for r in sorted(regions, key=lambda r: (len(r), r))]

    # 咨询
    def ask(message: str, chat: list, state: dict | None, region: str | None = None):
        message = (message or "").strip()
        if not message:
            yield "", chat, gr.skip(), state
            return
        # the API's limits, applied by keeping the most recent messages within them
        history = recent_history(history_from(chat), settings.answer.max_history_turns, settings.answer.max_history_chars,
                                 settings.answer.max_question_chars)
        chat = list(chat or []) + [{"role": "user", "content": render.e(message)}, {"role": "assistant", "content": "…"}]
        place = "" if not region or region == ANY_PLACE else region.strip()
        if place and not service.places.normalise(place):  # typed into 所在地区: said, never silently dropped
            chat[-1] = {"role": "assistant", "content": render.e(
                f"无法识别所在地区“{place}”：请从列表中选择，或输入省、市、区县的名称（例如 宁波市）。")}
            yield "", chat, "", state
            return
        yield "", chat, "", state
        written = ""
        for event in service.stream(message, history, region=place):
            if isinstance(event, str):
                written += event
                chat[-1] = {"role": "assistant", "content": render.e(written)}
                yield "", chat, gr.skip(), state
            else:
                answer: Answer = event
                chat[-1] = {"role": "assistant", "content": render.chat_text(answer)}
                yield "", chat, render.answer_panel(answer), answer.to_json()

    def feedback(vote: str, comment: str, state: dict | None) -> str:
        if vote not in ("up", "down"):
            return "评价应为 up（有帮助）或 down（没帮助）。"
        if not state:
            return "请先提问，再评价答案。"
        service.feedback.add(state["question"], state["answer"], state["citations"], 1 if vote == "up" else -1, comment)
        if vote == "down":
            service.log_vote_down(state["question"])  # the knowledge-gap log keeps the question only
        return "感谢反馈！"

    # 检索
    def search(query: str, k: float, types: list[str], issuers: list[str], date_from: str, date_to: str,
               levels: list[str] | None = None, statuses: list[str] | None = None, region: str | None = None):
        query = (query or "").strip()
        if not query:
            return render.search_results([]), ""
        if len(query) > settings.answer.max_question_chars:
            return f'<div class="ipkb-refused">检索内容过长（{len(query)}字），请精简到{settings.answer.max_question_chars}字以内。</div>', ""
        try:
            names = issuer_names()
            issuers = [n for i in issuers or [] for n in names.get(i, [i])]  # every name of the chosen issuers
            filters = filters_from({"doc_types": types, "issuers": issuers, "date_from": date_from, "date_to": date_to,
                                    "levels": levels or None, "statuses": statuses or None,
                                    "region": None if not region or region == ANY_PLACE else region},
                                   service.places)
        except ValidationError:
            return ('<div class="ipkb-refused">成文日期应为 YYYY-MM-DD（或 YYYY、YYYY-MM），'
                    '例如 2019-01-01。</div>'), ""
        except ValueError as exc:  # a place it does not know
            return f'<div class="ipkb-refused">{render.e(exc)}</div>', ""
        passages, answer = service.lookup(query, k=int(k), filters=filters)  # one search for both
        return render.search_results(passages), render.read_aloud(answer)

    # 知识库
    def guarded(action):
        @functools.wraps(action)  # Gradio reads the signature (gr.Request) through __wrapped__
        def run(*args):
            try:
                return action(*args)
            except (AdminError, UploadError, KbError) as exc:
                return f"⚠️ {exc}"
        return run

    def upload(password: str, files: list | None, request: gr.Request) -> str:
        if not files:
            return "请选择要上传的文件。"
        # Gradio keeps each upload under its original name in a temporary folder; only files there are taken
        paths = [uploaded_path(f) for f in files]
        saved = service.upload(password, [(p.name, p) for p in paths], client_of(request))
        service.reindex(password, client_of(request))
        return f"已上传 {len(saved)} 个文件：{'、'.join(saved)}；正在后台建立索引，期间仍按旧索引回答。"

    def delete(password: str, doc_id: str | None, request: gr.Request) -> str:
        if not doc_id:
            return "请选择要删除的文件。"
        name = service.delete(password, doc_id, client_of(request))
        service.reindex(password, client_of(request))
        return f"已删除“{name}”；正在后台重建索引。"

    def reindex(password: str, request: gr.Request) -> str:
        started = service.reindex(password, client_of(request))
        return "已开始重建索引。" if started else "索引正在建立中，请稍候。"

    def cancel(password: str, request: gr.Request) -> str:
        return "已请求取消：当前文件在下一页前停止。" if service.cancel(password, client_of(request)) else "没有正在进行的索引任务。"

    def delete_failed(password: str, request: gr.Request) -> str:
        names = service.delete_failed(password, client_of(request))
        return f"已删除 {len(names)} 个失败的文件：{'、'.join(names)}" if names else "没有失败的文件。"

    def status(seen: str | None, said: str | None):
        """Polled every second: the job's progress; when the index changed, the document list, the header's
        counts and the 检索 filter choices; when the job is over, the outcome in place of “正在后台…”."""
        job = service.job
        failed = [p.name for p in service.failed_uploads()]
        text = render.job_status(job.message, job.fraction, job.running, job.errors, job.skipped) + (
            f'<div class="ipkb-failed">未能建立索引的上传文件（可删除）：{render.e("、".join(failed))}</div>' if failed else "")
        outcome = (render.job_outcome(job.message, job.added, job.skipped, job.errors, job.unchanged)
                   if not job.running and job.finished and any(w in (said or "") for w in IN_PROGRESS) else gr.skip())
        generation = str(service.generation_path)
        if generation == seen:
            return text, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), outcome, seen, gr.skip(), gr.skip()
        docs, counts = service.documents(), service.chunk_counts()
        places = region_choices()  # a first build brings the places: the two place boxes must offer them
        return (text, render.document_rows(docs, counts, service.suspicious()), gr.update(choices=doc_choices()), overview_text(),
                gr.update(choices=type_choices()), gr.update(choices=issuer_choices()), outcome, generation,
                gr.update(choices=places), gr.update(choices=places))

    def overview_text() -> str:
        return f"知识库：{len(service.documents())} 份文件，{sum(service.chunk_counts().values())} 个分块。"

    # 评测
    def evaluate(choice: str, uploaded, ablation: bool, progress=gr.Progress()):
        try:
            testset = SAMPLE_TESTSET if choice == "sample" or not uploaded else uploaded_path(uploaded)
        except UploadError as exc:
            return f"⚠️ {exc}", None, None
        if not eval_lock.acquire(blocking=False):
            return "评测正在进行中，请稍候。", None, None
        try:
            # read-only for the knowledge base: a run writes to a temporary folder (the last run's is removed)
            for old in EVAL_RUNS.glob("run-*"):
                shutil.rmtree(old, ignore_errors=True)
            EVAL_RUNS.mkdir(parents=True, exist_ok=True)
            out = Path(tempfile.mkdtemp(prefix="run-", dir=EVAL_RUNS))
            documents, chunks = service.evaluate(  # the knowledge base the run is against, named in the report
                testset, out, ablation, lambda done, total, label: progress(done / total, desc=f"{label} {done}/{total}"))
        except BadTestSetError as exc:  # name the file as the user knows it, not its temporary path
            return f"⚠️ {str(exc).replace(str(testset), testset.name)}", None, None
        finally:
            eval_lock.release()
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        limits = tomllib.loads(FLOORS.read_text(encoding="utf-8"))
        report = render.eval_report(metrics, limits, testset.name, documents, chunks)
        images = [(str(out / name), caption) for name, caption in
                  (("metrics.png", "各项指标"), ("latency.png", "延迟"), ("hardest.png", "最难的问题"))]
        return report, images, str(out / "report.html")

    docs = service.documents()
    with gr.Blocks(title="IPKB 知识产权政策知识库") as ui:
        contact = render.contact_line(settings.answer.bureau_name, settings.answer.hotline)
        gr.Markdown("# IPKB 知识产权政策知识库\n依据本局政策文件作答，每条答案注明出处（标题、文号、页码、条款）。"
                    + (f"\n\n{contact}" if contact else ""), elem_id="ipkb-header")
        overview = gr.Markdown(overview_text(), elem_id="ipkb-overview")
        with gr.Tab("咨询"):
            # no label: Gradio floats it over the first message
            chatbot = gr.Chatbot(label="咨询", show_label=False, height=420, render_markdown=False, sanitize_html=True,
                                 elem_id="ipkb-chat")
            with gr.Row():
                message = gr.Textbox(placeholder="请输入问题，例如：专利质押贷款出了坏账谁兜底？", show_label=False,
                                     scale=8, max_length=settings.answer.max_question_chars, elem_id="ipkb-question")
                send = gr.Button("提问", variant="primary", scale=1, elem_id="ipkb-send")
                stop = gr.Button("停止", variant="stop", scale=1, elem_id="ipkb-stop")
                clear = gr.Button("清空对话", scale=1, elem_id="ipkb-clear")
            gr.Examples(EXAMPLES, inputs=message, label="示例问题")
            cited = gr.HTML(elem_id="ipkb-cited")
            last = gr.State(None)
            with gr.Row():
                up = gr.Button("👍 有帮助", size="sm")
                down = gr.Button("👎 没帮助", size="sm")
                comment = gr.Textbox(placeholder="可选：补充说明", show_label=False, scale=4)
            thanks = gr.Markdown(elem_id="ipkb-thanks")
            asker_place = gr.Dropdown(region_choices(), value=settings.answer.region or ANY_PLACE, label="所在地区（问题未提地名时按此选用适用的文件）",
                                      allow_custom_value=True, elem_id="ipkb-region")
            asked = send.click(ask, [message, chatbot, last, asker_place], [message, chatbot, cited, last], api_name="ask")
            submitted = message.submit(ask, [message, chatbot, last, asker_place], [message, chatbot, cited, last],
                                       api_name=False)
            for event in (send.click, message.submit):  # a new question: the last 感谢反馈！ goes
                event(lambda: "", None, thanks, api_name=False)
            stop.click(None, None, None, cancels=[asked, submitted], api_name=False)
            # clearing forgets the answer too: its cited passages, the feedback target and the thanks
            forget = [chatbot, cited, last, thanks]
            clear.click(lambda: ([], "", None, ""), None, forget, cancels=[asked, submitted], api_name=False)
            chatbot.clear(lambda: ("", None, ""), None, [cited, last, thanks], api_name=False)
            vote = gr.Textbox(visible=False)
            up.click(lambda c, s: feedback("up", c, s), [comment, last], thanks, api_name=False)
            down.click(lambda c, s: feedback("down", c, s), [comment, last], thanks, api_name=False)
            gr.Button(visible=False).click(feedback, [vote, comment, last], thanks, api_name="feedback")
            chat_controls(service, last)  # 保存为标准口径 (web/curated_ui.py)
        with gr.Tab("检索"):
            with gr.Row():
                query = gr.Textbox(label="检索", placeholder="关键词或问题", scale=6, elem_id="ipkb-query")
                k = gr.Slider(1, 20, value=10, step=1, label="条数", scale=2)
            with gr.Row():
                types = gr.Dropdown(type_choices(), multiselect=True, label="文件类型")
                issuers = gr.Dropdown(issuer_choices(), multiselect=True, label="发文机关")
                date_from = gr.Textbox(label="成文日期自", placeholder="2019-01-01")
                date_to = gr.Textbox(label="成文日期至", placeholder="2019-12-31")
            with gr.Row():
                levels = gr.Dropdown(list(LEVELS), multiselect=True, label="层级")
                statuses = gr.Dropdown(list(STATUSES), multiselect=True, label="状态（如：只看现行有效）")
                search_place = gr.Dropdown(region_choices(), value=ANY_PLACE, label="适用地区", allow_custom_value=True)
            go = gr.Button("检索", variant="primary")
            aloud = gr.Textbox(label="可直接告知来电人的答复（含出处），点右上角复制", lines=4, buttons=["copy"],
                               interactive=False, elem_id="ipkb-aloud")
            results = gr.HTML(elem_id="ipkb-results")
            inputs = [query, k, types, issuers, date_from, date_to, levels, statuses, search_place]
            go.click(search, inputs, [results, aloud], api_name="search")
            query.submit(search, inputs, [results, aloud], api_name=False)
        with gr.Tab("知识库"):
            if not service.management_enabled:
                gr.Markdown("⚠️ 知识库管理未启用：在配置中设置 `admin_password`（或环境变量 `IPKB_ADMIN_PASSWORD`）后可上传、删除、重建索引。咨询与检索不受影响。")
            password = gr.Textbox(label="管理密码", type="password", interactive=service.management_enabled)
            job = gr.HTML(elem_id="ipkb-job")
            table = gr.Dataframe(value=render.document_rows(docs, service.chunk_counts(), service.suspicious()),
                                 headers=render.DOCUMENT_HEADERS, interactive=False, label="文件列表")
            with gr.Row():
                files = gr.File(file_count="multiple", label="上传文件（PDF、DOCX、TXT、MD、HTML）",
                                file_types=sorted(SUPPORTED_SUFFIXES), interactive=service.management_enabled,
                                elem_id="ipkb-files")
                with gr.Column():
                    upload_btn = gr.Button("上传并建立索引", interactive=service.management_enabled)
                    picked = gr.Dropdown(doc_choices(), label="选择文件", interactive=service.management_enabled,
                                         allow_custom_value=True)  # documents uploaded later: the service checks the id
                    delete_btn = gr.Button("删除所选文件", variant="stop", interactive=service.management_enabled)
                    reindex_btn = gr.Button("重建索引", interactive=service.management_enabled)
                    cancel_btn = gr.Button("取消索引任务", interactive=service.management_enabled)
                    failed_btn = gr.Button("删除失败的上传文件", interactive=service.management_enabled)
            outcome = gr.Markdown(elem_id="ipkb-outcome")
            upload_btn.click(guarded(upload), [password, files], outcome, api_name="upload")
            delete_btn.click(guarded(delete), [password, picked], outcome, api_name="delete")
            reindex_btn.click(guarded(reindex), [password], outcome, api_name="reindex")
            cancel_btn.click(guarded(cancel), [password], outcome, api_name="cancel")
            failed_btn.click(guarded(delete_failed), [password], outcome, api_name="delete_failed")
            knowledge_extras(service)  # curated entries to review, documents' citation counts
        # outside the tabs: it ticks whichever tab is open (the header and the 检索 filters stay fresh)
        seen = gr.State(str(service.generation_path))
        gr.Timer(1.0).tick(status, [seen, outcome], [job, table, picked, overview, types, issuers, outcome, seen,
                                                     asker_place, search_place], api_name="status")
        curated_tab(service)
        gaps_tab(service)
        with gr.Tab("评测"):
            choice = gr.Radio([("示例测试集（sample.jsonl，64题）", "sample"), ("上传的测试集", "upload")],
                              value="sample", label="测试集")
            testset = gr.File(label="上传测试集（JSONL）", file_types=[".jsonl"])
            ablation = gr.Checkbox(value=False, label="同时对比 BM25 / 向量 / 混合检索（耗时约三倍）")
            run_btn = gr.Button("运行评测", variant="primary")
            metrics_md = gr.Markdown()
            plots = gr.Gallery(label="图表", columns=3, height=320, object_fit="contain")  # not cropped
            report = gr.File(label="下载报告（HTML）")
            run_btn.click(evaluate, [choice, testset, ablation], [metrics_md, plots, report], api_name="evaluate")
    return ui

