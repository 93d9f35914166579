"""``hubwatch report``: the seed study's answers from whatever ClickHouse holds, as one
self-contained HTML page (figures inline) and the same numbers as JSON.

``gather`` reads the tables, ``sections`` computes the numbers (pure), ``figures`` draws
them, ``page`` renders the HTML. Nothing here writes to ClickHouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hubwatch.errors import ConfigError
from hubwatch.report import sections
from hubwatch.report.gather import gather, known_boards

__all__ = ["ReportFiles", "build", "write_report"]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    json: Path
    figures: list[str]  # figure keys, as ids in the page (``fig-<key>``)


def build(client: Any, database: str, board: str | None = None) -> dict[str, Any]:
    """The report's numbers, JSON-ready. ``board`` limits it to one leaderboard."""
    data = gather(client, None if board is None else (board,))
    if board is not None and board not in data.board_entries:
        imported = ", ".join(known_boards(client)) or "none"
        raise ConfigError(f"no board {board!r} has average scores (imported: {imported})")
    boards = sorted(data.board_entries) if board is None else [board]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "boards": boards,
        "accuracy": sections.accuracy(data, boards),
        "sizes": sections.sizes(data, boards),
        "engagement": sections.engagement(data),
        "architectures": sections.architectures(data, boards),
        "licences": sections.licences(data, boards),
    }


def write_report(client: Any, database: str, out: Path, board: str | None = None) -> ReportFiles:
    from hubwatch.report.figures import figures
    from hubwatch.report.page import render

    report = build(client, database, board)
    plots = figures(report)
    report["figures"] = [
        {"id": f"fig-{p.key}", "title": p.title, "caption": p.caption} for p in plots
    ]
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"
    html.write_text(render(report, plots), encoding="utf-8")
    numbers = out / "report.json"
    numbers.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return ReportFiles(html, numbers, [p.key for p in plots])
