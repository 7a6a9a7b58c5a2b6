"""Values passed between the pipeline, the router and the providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass
class ToolCall:
    """A tool the model asks to call: its call id (echoed with the result), the tool's name and
    the arguments as the model wrote them (JSON text, not yet checked)."""

    id: str
    name: str
    arguments: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass
class Completion:
    """What a provider returns for one call."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0  # to the first token when streaming, else to the whole answer
    model: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)  # the model asks for these (tools offered)


@dataclass
class Attempt:
    """One try of one model, recorded with the answer (``Message.attempts``)."""

    model: str  # model config name ("env-default" for the deployment default)
    provider: str
    outcome: str  # ok | timeout | error | rate_limited | breaker_open | cancelled
    latency_ms: int = 0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "outcome": self.outcome,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


@dataclass
class Answer:
    """The router's result: the text to send and how it was obtained."""

    text: str
    source: str = "model"  # model | knowledge | cache | builtin | failure
    model_config: Any = None  # the ModelConfig that answered, when one did
    model_name: str = ""
    provider: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal("0")
    latency_ms: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    fallback_used: bool = False
    cached: bool = False
    failed: bool = False
    cancelled: bool = False
    truncated: bool = False  # a stream broke after some text was already shown; ``text`` is that part
    tool_calls: list[ToolCall] = field(default_factory=list)  # the model asks for these instead of answering


class ProviderError(Exception):
    """A model call failed. ``outcome`` is the metrics label (timeout, error, rate_limited);
    ``retryable`` says whether another try of the same model could help."""

    def __init__(
        self, message: str, *, outcome: str = "error", retryable: bool = True, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retryable = retryable
        self.status = status  # the provider's HTTP status, when it answered with one
