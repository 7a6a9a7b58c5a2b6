"""Telegram's 👍 / 👎 rating buttons: an inline keyboard whose ``callback_data`` names the answer.

``callback_data`` holds 1–64 bytes, and a client may send any bytes it likes in it, so it must be
signed. An answer's feedback token (``<message id>.<tenant id>:<timestamp>:<signature>``, a Django
``TimestampSigner`` value with its full HMAC-SHA256) is about 60 characters in decimal; the button
carries the same token re-encoded without loss, the two ids in base 62:

    r<u|d><message id, base 62>.<tenant id, base 62>:<timestamp>:<signature>

e.g. ``ru3D7.1:1tAvXs:mC0yq…`` (about 55 bytes; message ids up to 62⁸ fit). No lookup table, nothing
stored: a click turns the data back into the exact token, which the rating service verifies like
any other (an altered byte fails the signature; an old one has expired). Data that is not of this
shape decodes to nothing and is answered "this button does not work".
"""

from __future__ import annotations

import re
from typing import Any

from django.core.signing import b62_decode, b62_encode

from ..base import rating_text

#: Telegram's limit on ``callback_data``, in bytes.
CALLBACK_DATA_MAX = 64
PREFIX = "r"
THUMBS = {"u": "up", "d": "down"}
#: How the chosen thumb's button is marked: ``style`` where the client knows it, a tick everywhere.
CHOSEN_STYLE = "primary"
CHOSEN_MARK = " ✓"

_TOKEN = re.compile(r"(\d{1,18})\.(\d{1,18}):([0-9A-Za-z]{1,11}):([A-Za-z0-9_-]{20,88})")
_DATA = re.compile(r"r([ud])([0-9A-Za-z]{1,11})\.([0-9A-Za-z]{1,11}):([0-9A-Za-z]{1,11}):([A-Za-z0-9_-]{20,88})")


def callback_data(token: str, thumb: str) -> str:
    """The ``callback_data`` of ``thumb``'s button for the answer of feedback ``token``; "" when the
    token is not a feedback token or the result would not fit in 64 bytes (no buttons then)."""
    match = _TOKEN.fullmatch(token or "")
    code = next((c for c, t in THUMBS.items() if t == thumb), "")
    if match is None or not code:
        return ""
    message_id, tenant_id, stamp, signature = match.groups()
    data = f"{PREFIX}{code}{b62_encode(int(message_id))}.{b62_encode(int(tenant_id))}:{stamp}:{signature}"
    return data if len(data.encode()) <= CALLBACK_DATA_MAX else ""


def click_from_data(data: Any) -> tuple[str, str]:
    """``(feedback token, thumb)`` from a button's ``callback_data``; ``("", "")`` for data that
    no Parley button carries (too long, another shape, not a string). The token is not checked
    here: the rating service verifies its signature and age."""
    if not isinstance(data, str) or len(data.encode()) > CALLBACK_DATA_MAX:
        return "", ""
    match = _DATA.fullmatch(data)
    if match is None:
        return "", ""
    code, message_id, tenant_id, stamp, signature = match.groups()
    return f"{b62_decode(message_id)}.{b62_decode(tenant_id)}:{stamp}:{signature}", THUMBS[code]


def rating_keyboard(token: str, language: str, *, chosen: str = "") -> dict[str, Any] | None:
    """The ``reply_markup`` of an answer's 👍 / 👎 buttons (labels in ``language``), one row; the
    ``chosen`` thumb's button marked. None when the token cannot be carried (see ``callback_data``)."""
    row = []
    for thumb in ("up", "down"):
        data = callback_data(token, thumb)
        if not data:
            return None
        button: dict[str, Any] = {"text": rating_text(language, thumb), "callback_data": data}
        if thumb == chosen:
            button["text"] += CHOSEN_MARK
            button["style"] = CHOSEN_STYLE
        row.append(button)
    return {"inline_keyboard": [row]}
