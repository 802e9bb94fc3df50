"""Issue 20's acceptance for the learned ranker, read from a `python -m eval train-ranker` report
(`--min-gain`, `make bench-ranker`)."""
from __future__ import annotations


def shortfalls(report: dict, min_gain: float) -> list[str]:
    """What of issue 20's acceptance a report misses: the lecoqa CV at least `min_gain` above RRF 1:1 on hit@1
    and MRR@10, and no cross-set split below RRF 1:1 on either."""
    out = []
    cv = report["cv_lecoqa"]
    for metric in ("hit@1", "MRR@10"):
        gain = cv["learned"][metric] - cv["RRF 1:1"][metric]
        if gain < min_gain - 1e-9:
            out.append(f"lecoqa {metric}: learned {cv['learned'][metric]:.4f} is {gain:+.4f} over RRF 1:1, "
                       f"under {min_gain:+.4f}")
    for test, rows in report.get("cross", {}).items():
        for method, row in rows.items():
            if method.startswith("learned"):
                for metric in ("hit@1", "MRR@10"):
                    if row[metric] < rows["RRF 1:1"][metric] - 1e-9:
                        out.append(f"{test}, {method}: {metric} {row[metric]:.3f} under RRF 1:1's "
                                   f"{rows['RRF 1:1'][metric]:.3f}")
    return out
