"""Services of the model layer that the admin and the setup page call."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.utils.translation import gettext as _

from apps.core import netguard

from .providers import provider_for
from .types import ProviderError

TEST_PROMPT = [{"role": "user", "content": "Reply with the single word OK."}]
TEST_TIMEOUT_FLOOR_S = 15.0


@dataclass
class ModelTestResult:
    ok: bool
    latency_ms: int = 0
    message: str = ""  # what to show: the latency summary, or the provider's own error
    sample: str = ""  # the start of the model's reply


def model_test(config: object) -> ModelTestResult:
    """Make one real call to ``config`` (a ModelConfig, saved or not) and report how it went.

    Never raises for provider trouble: a wrong endpoint, key or model name gives ``ok=False`` and a
    message naming the problem (the provider's own error text when it sent one). The API key never
    appears in the message. The call waits at least 15 s, so a slow model reports its latency
    instead of a timeout, and the message says when it is slower than the config's fallback timeout.
    """
    timeout_s = float(getattr(config, "timeout_s", 3) or 3)
    endpoint = getattr(config, "endpoint", "") or ""
    refused = netguard.check_url(endpoint, resolve_host=True) if endpoint else ""
    if refused:  # said before anything is sent (the call itself would be refused at connect time)
        return ModelTestResult(ok=False, message=_("Not called: %(reason)s.") % {"reason": refused})
    if config.provider != "builtin" and not (config.model or "").strip():  # type: ignore[attr-defined]
        # Some servers answer a request without a model with their default one: the test would
        # pass, then the bot would not say which model it meant.
        said = _("Not called: the model name is empty; enter the provider's name for it, e.g. glm-4-turbo.")
        return ModelTestResult(ok=False, message=said)
    provider = provider_for(
        kind=config.provider,  # type: ignore[attr-defined]
        endpoint=config.endpoint,  # type: ignore[attr-defined]
        api_key=config.api_key,  # type: ignore[attr-defined]
        api_version=getattr(config, "api_version", ""),
    )
    started = time.monotonic()
    try:
        completion = provider.complete(
            TEST_PROMPT,
            model=config.model,  # type: ignore[attr-defined]
            max_tokens=16,
            timeout=max(timeout_s, TEST_TIMEOUT_FLOOR_S),
        )
    except ProviderError as exc:
        return ModelTestResult(ok=False, latency_ms=int((time.monotonic() - started) * 1000), message=str(exc))
    finally:
        provider.close()
    latency_ms = int((time.monotonic() - started) * 1000)
    message = _("OK — answered in %(ms)s ms (%(tin)s tokens in, %(tout)s out).") % {
        "ms": latency_ms,
        "tin": completion.tokens_in,
        "tout": completion.tokens_out,
    }
    if latency_ms > timeout_s * 1000:
        message += " " + _("Slower than its %(seconds)s s timeout: bots would fall back before it answers.") % {
            "seconds": f"{timeout_s:g}"
        }
    return ModelTestResult(ok=True, latency_ms=latency_ms, message=message, sample=completion.text[:200])
