"""Vectors from any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, bge-m3 on vLLM or Ollama,
Zhipu, Qwen …), through the official ``openai`` client. Vectors are stored unit-length as float32,
so a dot product is the cosine similarity."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _

from apps.core import netguard


class EmbeddingError(Exception):
    """The embedding model could not be reached or answered with something unusable (no secrets said)."""


def model_stamp(config: Any) -> str:
    """Identifies the model's settings: vectors made under another stamp are not comparable."""
    if config is None:
        return ""
    stamp = config.updated_at.timestamp() if config.updated_at else 0
    return f"{config.pk}@{stamp:.3f}"


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()
#: Embedding clients kept per process (one per model and its settings; each pools its connections).
CACHED_CLIENTS = 32


def _client(config: Any):
    """The model's client, reused while its settings are unchanged (questions are embedded one at
    a time, and a new client would open a new connection for each)."""
    key = (config.pk, model_stamp(config), config.endpoint, config.api_version)
    with _clients_lock:
        client = _clients.get(key)
    if client is None:
        client = _new_client(config)
        with _clients_lock:
            if len(_clients) >= CACHED_CLIENTS:
                _clients.clear()
            _clients[key] = client
    return client


def _new_client(config: Any):
    import openai

    common = {
        "api_key": config.api_key or "not-needed",
        "timeout": settings.KNOWLEDGE_HTTP_TIMEOUT,
        "max_retries": 2,
        # The endpoint is a tenant admin's: connections go through the outbound guard.
        "http_client": netguard.guarded_client(timeout=settings.KNOWLEDGE_HTTP_TIMEOUT),
    }
    if config.api_version:
        return openai.AzureOpenAI(azure_endpoint=config.endpoint, api_version=config.api_version, **common)
    return openai.OpenAI(base_url=config.endpoint or None, **common)


def embed(config: Any, texts: list[str]) -> np.ndarray:
    """Unit-length float32 vectors of ``texts`` (one row each), in order."""
    import openai

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    client = _client(config)
    try:
        response = client.embeddings.create(model=config.model, input=texts, encoding_format="float")
    except openai.APIStatusError as exc:
        raise EmbeddingError(
            _("The embedding model %(name)s answered HTTP %(status)s.")
            % {"name": config.name, "status": exc.status_code}
        ) from exc
    except openai.APIError as exc:
        raise EmbeddingError(
            _("The embedding model %(name)s could not be reached (%(error)s).")
            % {"name": config.name, "error": type(exc).__name__}
        ) from exc
    rows = sorted(response.data, key=lambda item: item.index)
    if len(rows) != len(texts):
        raise EmbeddingError(
            _("The embedding model %(name)s returned %(got)s vectors for %(sent)s passages.")
            % {"name": config.name, "got": len(rows), "sent": len(texts)}
        )
    matrix = np.asarray([row.embedding for row in rows], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")
