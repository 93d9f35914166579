"""Whether hubwatch knows a model id, and which id the user may have meant: a command
given a model it has never seen says so, instead of an empty answer that reads as "no
data"."""

from __future__ import annotations

from typing import Any

__all__ = ["unknown_model"]

# Known: listed by the Hub (models) or placed in a family (model_lineage); both are sorted
# by the id. The case-insensitive match reads every id, but only for an id not known.
_KNOWN = """
SELECT (SELECT count() FROM models WHERE repo_id = {model:String})
     + (SELECT count() FROM model_lineage WHERE model_id = {model:String})
"""
_MEANT = """
SELECT (SELECT any(canonical_id) FROM model_aliases FINAL WHERE alias_id = {model:String}),
       (SELECT min(repo_id) FROM models WHERE lower(repo_id) = lower({model:String})),
       (SELECT min(model_id) FROM model_lineage WHERE lower(model_id) = lower({model:String}))
"""


def unknown_model(client: Any, model: str) -> str | None:
    """None when ``model`` is known to hubwatch; else one sentence saying it is not, with
    the id the Hub resolves it to (an alias: an old name or another casing) or one that
    differs only in case, if there is one. ``client`` is on the hubwatch database."""
    parameters = {"model": model}
    if int(client.query(_KNOWN, parameters=parameters).result_rows[0][0]):
        return None
    alias, listed, placed = client.query(_MEANT, parameters=parameters).result_rows[0]
    meant = alias or listed or placed
    hint = f"; did you mean {meant!r}?" if meant and meant != model else ""
    return f"model {model!r} is not known to hubwatch (not listed or in a family){hint}"
