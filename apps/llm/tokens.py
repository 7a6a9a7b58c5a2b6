"""One token estimate for the whole of Parley.

Every provider tokenizes differently; Parley needs a model-independent count where a provider
reports none (usage figures, costs) and a budget guard for the conversation context that errs on
the generous side. One CJK character (Chinese, Japanese kana, Korean, CJK and full-width punctuation) counts one
token, other text one per four characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
#: Per-message overhead of chat formats (role markers), in tokens.
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def estimate_message_tokens(messages: Iterable[dict]) -> int:
    """The estimate for a chat of ``{"role", "content"}`` messages: their text plus each message's
    format overhead."""
    return sum(estimate_tokens(str(m.get("content") or "")) + MESSAGE_OVERHEAD for m in messages)
