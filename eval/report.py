"""The evaluation report: report.md and a self-contained report.html, with PNG plots.

Plots (matplotlib, Agg): metric bars per ablation variant, the latency histogram, and the
hardest questions. Plot labels are English and question ids, so no CJK font is needed;
the tables carry the Chinese questions and answers (HTML-escaped).
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from eval.scoring import question_scores  # noqa: E402
from eval.testset import Question  # noqa: E402

BARS = [("retrieval", "hit@1"), ("retrieval", "hit@3"), ("retrieval", "hit@5"), ("retrieval", "MRR@10"),
        ("answers", "keypoint_recall"), ("answers", "citation_precision"), ("answers", "all_keypoints"),
        ("refusals", "refusal_recall"), ("refusals", "false_refusal_rate")]


def hardest(questions: list[Question], results: list[dict], n: int = 10) -> list[tuple[Question, dict, dict, float]]:
    """Questions the pipeline got most wrong: missed keypoints, false refusals, unrefused unanswerables."""
    rows = []
    for q, r in zip(questions, results):
        s = question_scores(q, r)
        if q.answerable:
            badness = (1 - s["keypoint_recall"]) + (1.0 if s["refused"] else 0.0) + (1 - s["rr@10"]) * 0.5
        else:
            badness = 0.0 if s["refused"] else 1.5
        if badness > 0:
            rows.append((q, r, s, badness))
    return sorted(rows, key=lambda row: -row[3])[:n]


def _plot_metrics(metrics: dict, path: Path) -> None:
    variants = list(metrics["ablation"])
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        values = [metrics["ablation"][variant][group][name] for group, name in BARS]
        ax.bar([x + i * width for x in range(len(BARS))], values, width, label=variant)
    ax.set_xticks([x + width * (len(variants) - 1) / 2 for x in range(len(BARS))])
    ax.set_xticklabels([name for _, name in BARS], rotation=25, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title("Metrics by retrieval mode / answerer (false_refusal_rate: lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_latency(results: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for stage in ("retrieve", "answer", "total"):
        ax.hist([r["timings_ms"][stage] for r in results], bins=20, alpha=0.55, label=stage)
    ax.set_xlabel("ms")
    ax.set_ylabel("questions")
    ax.set_title("Latency per stage")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_hardest(rows: list, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 0.4 * max(len(rows), 1) + 1.2))
    labels = [f"{q.id} ({'answerable' if q.answerable else q.kind or 'unanswerable'})" for q, *_ in rows]
    ax.barh(labels[::-1], [row[3] for row in rows][::-1], color="#c0504d")
    ax.set_xlabel("badness: missed keypoints + false refusal + rank penalty, or 1.5 if not refused")
    ax.set_title("Hardest questions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pct(x: float) -> str:
    return f"{x:.3f}"


def _tables(metrics: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    main = metrics
    summary = [["hit@1", _pct(main["retrieval"]["hit@1"])], ["hit@3", _pct(main["retrieval"]["hit@3"])],
               ["hit@5", _pct(main["retrieval"]["hit@5"])], ["MRR@10", _pct(main["retrieval"]["MRR@10"])],
               ["keypoint recall", _pct(main["answers"]["keypoint_recall"])],
               ["citation precision", _pct(main["answers"]["citation_precision"])],
               ["answered with every keypoint", _pct(main["answers"]["all_keypoints"])],
               ["refusal recall", _pct(main["refusals"]["refusal_recall"])],
               ["false-refusal rate", _pct(main["refusals"]["false_refusal_rate"])]]
    summary += [[f"refusal recall: {k}", _pct(v)] for k, v in main["refusals"]["by_kind"].items()]
    latency = [[stage, f"{v['p50']:.1f}", f"{v['p95']:.1f}"] for stage, v in main["latency_ms"].items()]
    ablation = [[variant] + [_pct(m[group][name]) for group, name in BARS] for variant, m in main["ablation"].items()]
    return [("Metrics", ["metric", "value"], summary),
            ("Latency (ms)", ["stage", "p50", "p95"], latency),
            ("Ablation", ["variant"] + [name for _, name in BARS], ablation)]


def _hardest_rows(rows: list) -> list[list[str]]:
    out = []
    for q, r, s, _ in rows:
        answer = r.get("body", r["answer"])
        expected = "、".join(q.keypoints) if q.answerable else "(should be refused)"
        state = "refused" if s["refused"] else "answered"
        out.append([q.id, q.question, expected, state, answer[:160]])
    return out


def write_report(out_dir: Path, metrics: dict, questions: list[Question], results: list[dict]) -> None:
    rows = hardest(questions, results)
    plots = {"metrics.png": "Metrics", "latency.png": "Latency", "hardest.png": "Hardest questions"}
    _plot_metrics(metrics, out_dir / "metrics.png")
    _plot_latency(results, out_dir / "latency.png")
    _plot_hardest(rows, out_dir / "hardest.png")
    tables = _tables(metrics)
    hard_header = ["id", "question", "expected", "outcome", "answer"]
    hard = _hardest_rows(rows)
    title = f"IPKB evaluation — {Path(metrics['testset']).name}"
    info = (f"{metrics['questions']} questions ({metrics['answerable']} answerable, {metrics['unanswerable']} "
            f"unanswerable) · answerer {metrics['settings']['answerer']} · retrieval {metrics['settings']['retrieval_mode']}"
            f" · embedder {metrics['settings']['embedder']} · {metrics['created_at']}")

    md = [f"# {title}", "", info, ""]
    for name, header, body in tables:
        md += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(row) + " |" for row in body] + [""]
    md += ["## Plots", ""] + [f"![{alt}]({name})" for name, alt in plots.items()] + [""]
    md += ["## Hardest questions", "", "| " + " | ".join(hard_header) + " |", "|" + "---|" * len(hard_header)]
    md += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in hard]
    (out_dir / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    def table_html(header: list[str], body: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows_html = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"

    images = "".join(
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,'
        f'{base64.b64encode((out_dir / name).read_bytes()).decode()}"><figcaption>{html.escape(alt)}</figcaption></figure>'
        for name, alt in plots.items())
    sections = "".join(f"<h2>{html.escape(name)}</h2>{table_html(header, body)}" for name, header, body in tables)
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; max-width: 40em; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
figure {{ margin: 1em 0; }}
</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(info)}</p>
{sections}<h2>Plots</h2>{images}
<h2>Hardest questions</h2>{table_html(hard_header, hard)}
</body></html>
"""
    (out_dir / "report.html").write_text(page, encoding="utf-8")
