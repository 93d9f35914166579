"""The report's figures: matplotlib (Agg, offline) to PNG bytes. Each figure carries its n,
source and time range in a footer, so a PNG copied out of the page still says what it is."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["Plot", "figures"]


@dataclass(frozen=True, slots=True)
class Plot:
    key: str
    title: str
    caption: str  # n, source, time range
    png: bytes


def _span(time_range: dict[str, Any]) -> str:
    values = [str(v)[:10] for v in time_range.values() if v]
    if not values:
        return "time range unknown"
    kind = "submitted" if "submitted_from" in time_range else "created"
    return f"{kind} {values[0]} to {values[-1]}"


def _caption(n: int, part: dict[str, Any]) -> str:
    return f"n = {n} · source: {part['source']} · {_span(part['time_range'])}"


def _png(fig: Figure, caption: str) -> bytes:
    fig.text(0.01, 0.01, caption, fontsize=7, color="#555555", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _bars(ax: Any, groups: dict[str, dict[str, Any]], label: str) -> None:
    names = [g for g, s in groups.items() if s.get("n")][:12]
    medians = [groups[g]["median"] for g in names]
    ax.barh(names, medians, color=["#2a9d8f" if m >= 0 else "#e76f51" for m in medians])
    for y, g in enumerate(names):
        ax.annotate(f" n={groups[g]['n']}", (0, y), fontsize=7, va="center")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(label)


def _accuracy(board: str, part: dict[str, Any]) -> Plot:
    deltas = [p["delta"] for p in part["pairs"]]
    fig, (hist, rel) = plt.subplots(1, 2, figsize=(10, 3.8))
    hist.hist(deltas, bins=30, color="#264653")
    hist.axvline(0, color="black", linewidth=0.8)
    overall = part["overall"]
    hist.set_title(
        f"median {overall['median']:+.2f}, mean {overall['mean']:+.2f}, "
        f"{overall['share_improved']:.0%} improve",
        fontsize=9,
    )
    hist.set_xlabel("derivative - base, average score (points)")
    hist.set_ylabel("edges")
    _bars(rel, part["by_relation"], "median delta by relation (points)")
    return Plot(
        f"accuracy-{board}",
        f"Accuracy change of derivatives over their base, {board}",
        _caption(len(deltas), part),
        _png(fig, _caption(len(deltas), part)),
    )


def _architectures(board: str, part: dict[str, Any]) -> Plot:
    ranked = part["ranked"][:15]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(ranked) + 1.4))
    names = [f"{r['architecture']} (n={r['n']})" for r in ranked]
    medians = [r["median"] for r in ranked]
    low = [r["median"] - r["ci95_median"][0] for r in ranked]
    high = [r["ci95_median"][1] - r["median"] for r in ranked]
    ax.errorbar(medians, names, xerr=[low, high], fmt="o", color="#264653", capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("median delta with 95% bootstrap interval (points); ranked by lower end")
    n = sum(r["n"] for r in ranked)
    caption = _caption(n, part) + f" · architectures with n ≥ {part['min_edges_to_rank']}"
    return Plot(
        f"architectures-{board}",
        f"Which architectures gain most, {board}",
        caption,
        _png(fig, caption),
    )


def _sizes(part: dict[str, Any]) -> Plot:
    fig, (params, size_bytes) = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in (
        (params, "parameter_ratio", "parameters derivative / base"),
        (size_bytes, "byte_ratio", "bytes derivative / base"),
    ):
        groups = {
            r: [p[key] for p in part["pairs"] if p["relation"] == r and key in p]
            for r in part["by_relation"]
        }
        groups = {r: v for r, v in groups.items() if v}
        if groups:
            ax.boxplot(list(groups.values()), vert=False)
            ax.set_yticks(
                range(1, len(groups) + 1), [f"{r} (n={len(v)})" for r, v in groups.items()]
            )
            ax.set_xscale("log")
        ax.axvline(1, color="black", linewidth=0.8)
        ax.set_xlabel(label)
    caption = _caption(part["n"], part) + f" · share smaller: {part['share_smaller']}"
    return Plot("sizes", "Size of derivatives against their base", caption, _png(fig, caption))


def _quantized(board: str, part: dict[str, Any]) -> Plot:
    rows = part["by_precision"]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.4))
    _bars(ax, rows, "median delta against the same model at full precision (points)")
    n = sum(r["n"] for r in rows.values())
    caption = _caption(n, part) + " · size ratio assumed bits/16"
    return Plot(
        f"quantized-{board}",
        f"Quantized precisions against full precision, {board}",
        caption,
        _png(fig, caption),
    )


def _engagement(part: dict[str, Any]) -> Plot:
    versus = part["versus_base"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, name in zip(axes, ("likes", "downloads"), strict=True):
        points = versus[name].get("points", [])
        ax.scatter([b + 1 for _, b in points], [c + 1 for c, _ in points], s=12, alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        top = max([1, *(max(c, b) + 1 for c, b in points)])
        ax.plot([1, top], [1, top], color="black", linewidth=0.8)
        ax.set_xlabel(f"base {name} + 1")
        ax.set_ylabel(f"derivative {name} + 1")
        ax.set_title(
            f"{name}: {versus[name].get('share_derivative_higher', 0):.0%} of derivatives "
            "above their base",
            fontsize=9,
        )
    n = versus["likes"]["n"]
    return Plot(
        "engagement",
        "Likes and downloads of derivatives against their base",
        _caption(n, versus),
        _png(fig, _caption(n, versus)),
    )


def _growth(part: dict[str, Any]) -> Plot:
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for family in part["families"][:6]:
        days = family.get("days_after_root", [])
        if days:
            ax.step(days, range(1, len(days) + 1), where="post", label=family["root"])
    ax.set_xlabel("days after the root was created")
    ax.set_ylabel("descendants created")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    n = sum(f["descendants"] for f in part["families"][:6])
    return Plot(
        "growth",
        "Family growth over time (largest families)",
        _caption(n, part),
        _png(fig, _caption(n, part)),
    )


def _community(part: dict[str, Any]) -> Plot:
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(part["by_kind"]) + 1.4))
    kinds = list(part["by_kind"])
    ax.barh(kinds, [part["by_kind"][k] for k in kinds], color="#2a9d8f")
    ax.invert_yaxis()
    ax.set_xlabel("events")
    return Plot(
        "community",
        "Commit and discussion activity",
        _caption(part["n"], part),
        _png(fig, _caption(part["n"], part)),
    )


def _licences(key: str, part: dict[str, Any]) -> Plot:
    rows = part["base_to_derivative"][:12]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.4))
    labels = [f"{r['base']} → {r['derivative']}" for r in rows]
    ax.barh(
        labels,
        [r["edges"] for r in rows],
        color=["#2a9d8f" if r["base"] == r["derivative"] else "#e9c46a" for r in rows],
    )
    ax.invert_yaxis()
    ax.set_xlabel("edges (base licence → derivative licence); yellow: licence changed")
    caption = _caption(part["n"], part) + f" · same licence: {part['share_same_licence']:.0%}"
    return Plot(f"licences-{key}", f"Licences along lineage ({key})", caption, _png(fig, caption))


def figures(report: dict[str, Any]) -> list[Plot]:
    """Every figure the sections have data for; an empty section gets none (the page
    says why instead)."""
    plots: list[Plot] = []
    for board, part in report["accuracy"].items():
        if part["pairs"]:
            plots.append(_accuracy(board, part))
    for board, part in report["architectures"].items():
        if part["ranked"]:
            plots.append(_architectures(board, part))
    if report["sizes"]["pairs"]:
        plots.append(_sizes(report["sizes"]))
    for board, part in report["sizes"]["quantized"].items():
        if part["by_precision"]:
            plots.append(_quantized(board, part))
    engagement = report["engagement"]
    if engagement["versus_base"]["likes"]["n"] or engagement["versus_base"]["downloads"]["n"]:
        plots.append(_engagement(engagement))
    if any("days_after_root" in f for f in engagement["family_growth"]["families"]):
        plots.append(_growth(engagement["family_growth"]))
    if engagement["community"]["by_kind"]:
        plots.append(_community(engagement["community"]))
    for key, part in report["licences"].items():
        if part.get("n"):
            plots.append(_licences(key, part))
    return plots
