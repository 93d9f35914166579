"""The replay's engagement counters move as the Hub's do: each counter only ever grows."""

from __future__ import annotations

from typing import Any

from hubwatch.replay.world import HubWorld, ListSource


def _item(repo_id: str, created: str, **counts: int) -> dict[str, Any]:
    return {"id": repo_id, "createdAt": created, "likes": 1, **counts}


def test_activity_grows_only_the_counters_a_model_has() -> None:
    now = [0.0]
    source = ListSource([
        _item("a/thirty-day-only", "2025-01-01T00:00:00.000Z", downloads=400_000),
        _item("b/both", "2025-01-02T00:00:00.000Z", downloads=300, downloadsAllTime=5_000),
    ])  # fmt: skip
    world = HubWorld(source, start=2, activity_rate=50.0, seed=3, clock=lambda: now[0])
    seen: dict[str, list[dict[str, Any]]] = {"a/thirty-day-only": [], "b/both": []}
    for step in range(1, 41):
        now[0] = step * 1.0
        world.tick()
        for index in range(2):
            shown = world.view(index)
            seen[shown["id"]].append(shown)
    a, b = seen["a/thirty-day-only"], seen["b/both"]
    # The fixture gives no all-time count for a: the replay makes none up (one made up from
    # the activity alone would read as 400 k downloads lost next to the 30-day count).
    assert all("downloadsAllTime" not in shown or shown["downloadsAllTime"] is None for shown in a)
    assert a[-1]["downloads"] > 400_000
    # b's all-time count grows with its 30-day one, by the same downloads.
    grown = b[-1]["downloads"] - 300
    assert grown > 0 and b[-1]["downloadsAllTime"] == 5_000 + grown
    for earlier, later in zip(a + b, a[1:] + b[1:], strict=False):
        if earlier["id"] == later["id"]:
            assert later["downloads"] >= earlier["downloads"]
