"""Canned queries that answer the seed study's questions; ``hubwatch query NAME``.

Each ``NAME.sql`` starts with ``--`` comment lines that say what it answers and which
``{param:Type}`` parameters it takes (ClickHouse binds them server-side). A line
``-- defaults: name=value …`` gives the parameters a caller may leave out; ``now`` stands
for the current UTC time. A line ``-- summary: VIEW`` names the refreshable view
(hubwatch/summaries.py) whose table the query reads: its answer is as of that view's last
refresh. A line ``-- param name: text`` says what a parameter means (``hubwatch query
--list`` shows it); every parameter has one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

__all__ = ["CannedQuery", "canned_queries", "load"]

_PARAM = re.compile(r"\{(\w+):(\w+)\}")
_DEFAULTS = "-- defaults:"
_SUMMARY = "-- summary:"
_HELP = re.compile(r"^-- param (\w+): (.+)$")


@dataclass(frozen=True, slots=True)
class CannedQuery:
    name: str
    sql: str

    @property
    def description(self) -> str:
        lines = [
            line[2:].strip()
            for line in self.sql.splitlines()
            if line.startswith("--")
            and not (_HELP.match(line) or line.startswith((_DEFAULTS, _SUMMARY)))
        ]
        return " ".join(lines)

    @property
    def param_help(self) -> dict[str, str]:
        """What each parameter means, from its ``-- param name: text`` line."""
        found = (_HELP.match(line) for line in self.sql.splitlines())
        return {m[1]: m[2].strip() for m in found if m}

    @property
    def params(self) -> dict[str, str]:
        return dict(_PARAM.findall(self.sql))

    @property
    def defaults(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in self.sql.splitlines():
            if line.startswith(_DEFAULTS):
                found.update(p.split("=", 1) for p in line[len(_DEFAULTS) :].split())
        return found

    @property
    def summary(self) -> str | None:
        """The refreshable view whose table this query reads, None for a live query."""
        for line in self.sql.splitlines():
            if line.startswith(_SUMMARY):
                return line[len(_SUMMARY) :].strip()
        return None

    def bind(self, given: Mapping[str, str]) -> dict[str, str]:
        """``given`` with the defaults filled in (``now`` resolved); what is still missing
        is the caller's to report."""
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        bound = {k: now if v == "now" else v for k, v in self.defaults.items()}
        bound.update(given)
        return bound


def canned_queries() -> dict[str, CannedQuery]:
    return {
        entry.name.removesuffix(".sql"): CannedQuery(
            entry.name.removesuffix(".sql"), entry.read_text()
        )
        for entry in sorted(resources.files("hubwatch.queries").iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".sql")
    }


def load(name: str) -> CannedQuery:
    queries = canned_queries()
    if name not in queries:
        raise KeyError(f"no canned query {name!r}; there are: {', '.join(queries)}")
    return queries[name]
