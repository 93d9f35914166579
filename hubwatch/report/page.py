"""The report as one self-contained HTML page: figures inline as data URIs, no scripts,
no fonts or styles from elsewhere, so it opens offline."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from html import escape
from typing import Any

from hubwatch.report.figures import Plot

__all__ = ["render"]

_STYLE = """
body { font-family: sans-serif; max-width: 1060px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; } .empty { color: #a33; font-style: italic; }
.meta { color: #555; font-size: 0.9em; }
"""


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _summaries(groups: dict[str, dict[str, Any]], label: str) -> str:
    return _table(
        (label, "n", "median", "mean", "share improved"),
        (
            (g, s["n"], s.get("median"), s.get("mean"), s.get("share_improved"))
            for g, s in groups.items()
        ),
    )


def _figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode()
    return (
        f'<figure id="fig-{escape(plot.key)}"><img alt="{escape(plot.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption><b>{escape(plot.title)}</b>. '
        f"{escape(plot.caption)}</figcaption></figure>"
    )


def _meta(part: dict[str, Any]) -> str:
    times = part.get("time_range", {})
    values = [str(v)[:16].replace("T", " ") for v in times.values() if v]
    if not values:
        span = "No dates."
    elif "submitted_from" in times:
        span = f"Models submitted to the board {values[0]} to {values[-1]} UTC."
        uploaded = [str(v)[:10] for v in part.get("uploaded_range", {}).values() if v]
        if uploaded:
            span += f" Uploaded to the Hub {uploaded[0]} to {uploaded[-1]}, as the board says."
    else:
        span = f"Models created {values[0]} to {values[-1]} UTC."
    return f'<p class="meta">Source: {escape(part["source"])}. {escape(span)}</p>'


def _empty(part: dict[str, Any]) -> str:
    reason = part.get("empty_reason")
    return f'<p class="empty">Empty: {escape(reason)}.</p>' if reason else ""


# Accuracy lives on the boards only: with none imported, (a) and (d) have no board to show.
_NO_BOARD = (
    '<p class="empty">Empty: no leaderboard imported; accuracy comes from the boards '
    "(<code>hubwatch import leaderboard FILE</code>, the Open LLM Leaderboard v1 or v2 "
    "dump).</p>"
)


def render(report: dict[str, Any], plots: list[Plot]) -> str:
    by_key = {p.key: _figure(p) for p in plots}
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>hubwatch report</title><style>{_STYLE}</style></head><body>",
        "<h1>hubwatch report: do open derivatives improve on their base?</h1>",
        f'<p class="meta">Generated {escape(report["generated_at"])} from ClickHouse database '
        f"<code>{escape(report['database'])}</code>; boards: "
        f"{escape(', '.join(report['boards']) or 'none imported')}. Boards are never pooled: "
        "v1 and v2 score on different benchmarks and scales.</p>",
        "<h2>(a) Accuracy change of derivatives over their base</h2>",
    ]
    if not report["accuracy"]:
        out.append(_NO_BOARD)
    for board, part in report["accuracy"].items():
        out.append(f"<h3>{escape(board)}</h3>{_meta(part)}{_empty(part)}")
        out.append(by_key.get(f"accuracy-{board}", ""))
        if part["pairs"]:
            out.append(_summaries({"all": part["overall"]}, "edges"))
            out.append(_summaries(part["by_relation"], "relation"))
            out.append(_summaries(part["by_architecture"], "architecture (the derivative's)"))
            out.append(_summaries(part["by_type"], "type (the derivative's, on the board)"))
            out.append(_summaries(part["by_source"], "edge from"))
            out.append(
                f"<p>The Hub's lineage and the board's base field disagree on the relation of "
                f"{part['hub_board_disagreements']} pair(s); each is counted once, with the "
                "Hub's relation.</p>"
            )
    sizes = report["sizes"]
    out.append("<h2>(b) Size change and the accuracy it costs</h2>")
    out.append(_meta(sizes) + _empty(sizes) + by_key.get("sizes", ""))
    if sizes["pairs"]:
        out.append(f"<p>Share of derivatives smaller than their base: {sizes['share_smaller']}")
        out.append(" (in bytes where both weights are known, else in parameters).</p>")
        out.append(
            _table(
                ("relation", "pairs", "n params", "median param ratio", "n bytes",
                 "median byte ratio", "share smaller (bytes)", "parameters from"),
                (
                    (r, s["n"], s["parameter_ratio"]["n"], s["parameter_ratio"].get("median"),
                     s["byte_ratio"]["n"], s["byte_ratio"].get("median"),
                     s["byte_ratio"].get("share_smaller"),
                     ", ".join(f"{k or '-'}: {v}" for k, v in s["parameters_sources"].items()))
                    for r, s in sizes["by_relation"].items()
                ),
            )
        )  # fmt: skip
    for board, part in sizes["quantized"].items():
        out.append(f"<h3>Quantized against full precision, {escape(board)}</h3>")
        out.append(_meta(part) + _empty(part) + by_key.get(f"quantized-{board}", ""))
        if part["by_precision"]:
            out.append(
                _table(
                    ("precision", "models", "median delta", "worst", "within ±1 point",
                     "size ratio (assumed bits/16)"),
                    (
                        (p, s["n"], s["median"], s["worst"], s["share_within_1_point"],
                         s["size_ratio"])
                        for p, s in part["by_precision"].items()
                    ),
                )
            )  # fmt: skip
    engagement = report["engagement"]
    versus = engagement["versus_base"]
    out.append("<h2>(c) Community engagement</h2><h3>Derivatives against their base</h3>")
    out.append(_meta(versus) + _empty(versus) + by_key.get("engagement", ""))
    if versus["likes"]["n"] or versus["downloads"]["n"]:
        out.append(
            _table(
                ("counter", "edges", "median derivative", "median base",
                 "share derivative higher", "derivatives total", "bases total"),
                (
                    (name, v["n"], v.get("median_derivative"), v.get("median_base"),
                     v.get("share_derivative_higher"), v.get("derivatives_total"),
                     v.get("bases_total"))
                    for name, v in ((k, versus[k]) for k in ("likes", "downloads"))
                ),
            )
        )  # fmt: skip
        sources = ", ".join(f"{k}: {v}" for k, v in versus["counter_sources"].items())
        out.append(f"<p class='meta'>Counters from: {escape(sources)}.</p>")
    growth = engagement["family_growth"]
    out.append("<h3>Family growth over time</h3>")
    out.append(_meta(growth) + _empty(growth) + by_key.get("growth", ""))
    if growth["families"]:
        out.append(
            _table(
                ("root", "created", "descendants", "within 7 d", "30 d", "90 d"),
                (
                    (f["root"], (f["root_created"] or "")[:10], f["descendants"],
                     f.get("within_7_days"), f.get("within_30_days"), f.get("within_90_days"))
                    for f in growth["families"][:10]
                ),
            )
        )  # fmt: skip
    community = engagement["community"]
    out.append("<h3>Commit and discussion activity</h3>")
    out.append(_meta(community) + _empty(community) + by_key.get("community", ""))
    out.append("<h2>(d) Which architectures gain most</h2>")
    if not report["architectures"]:
        out.append(_NO_BOARD)
    for board, part in report["architectures"].items():
        out.append(f"<h3>{escape(board)}</h3>{_meta(part)}{_empty(part)}")
        out.append(by_key.get(f"architectures-{board}", ""))
        if part["ranked"]:
            out.append(
                _table(
                    ("rank", "architecture", "n", "median", "mean", "share improved",
                     "95% CI of median"),
                    (
                        (r["rank"], r["architecture"], r["n"], r["median"], r["mean"],
                         r["share_improved"], r["ci95_median"])
                        for r in part["ranked"]
                    ),
                )
            )  # fmt: skip
        if part["unranked"]:
            few = ", ".join(f"{r['architecture']} (n={r['n']})" for r in part["unranked"])
            out.append(
                f"<p class='meta'>Not ranked, fewer than {part['min_edges_to_rank']} scored "
                f"edges: {escape(few)}.</p>"
            )
    out.append("<h2>(e) Licences along lineage</h2>")
    for key, part in report["licences"].items():
        out.append(f"<h3>{escape(key)}</h3>{_meta(part)}{_empty(part)}")
        out.append(by_key.get(f"licences-{key}", ""))
        if part.get("n"):
            out.append(
                _table(
                    ("base licence", "derivative licence", "edges"),
                    ((r["base"], r["derivative"], r["edges"]) for r in part["base_to_derivative"]),
                )
            )
    out.append("</body></html>")
    return "\n".join(out)
