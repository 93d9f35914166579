"""Text from model ids, cards and authors, made inert for each target.

A hostile repo or card can say ``<!channel>``, ``<@U123>``, ``@everyone`` or
``<https://evil|click>``; in a message it must read as those characters, never as a
mention or a link. Links hubwatch itself makes (the model's Hub page) are built after the
text is escaped, from a URL whose path is percent-encoded.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["discord", "hub_url", "slack"]

_DISCORD_MARKDOWN = re.compile(r"([\\`*_~|>#\[\]()<:-])")
_ZERO_WIDTH = "\u200b"


def slack(text: str) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` are the only control characters (Slack's own
    rule); escaped, ``<!channel>``, ``<@U…>`` and ``<url|text>`` are plain text. Formatting
    marks are broken with a zero-width space so a name cannot restyle the message."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([*_~`])", "\\1" + _ZERO_WIDTH, text)


def discord(text: str) -> str:
    """Discord markdown: every markdown character backslash-escaped, and ``@`` followed by
    a zero-width space so ``@everyone``/``@here``/``<@id>`` do not ping even where the
    message's ``allowed_mentions`` were ignored."""
    text = _DISCORD_MARKDOWN.sub(r"\\\1", text)
    return text.replace("@", "@" + _ZERO_WIDTH)


def hub_url(model_id: str) -> str:
    """The model's page; every character of the id outside ``[A-Za-z0-9._/-]`` encoded, so
    it cannot end a Slack link (``|``, ``>``) or a Discord one (``)``)."""
    from hubwatch.alerts.alert import HUB_PAGE

    return HUB_PAGE + quote(model_id, safe="/._-")
