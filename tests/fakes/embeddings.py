"""A fake OpenAI-compatible embeddings server on 127.0.0.1 (``POST /v1/embeddings``, real wire format).

Vectors are deterministic: hashed character bigrams and words into ``dims`` buckets, so texts that
share wording are near each other (a crude stand-in for a real embedding model, good enough to test
the plumbing and to give the benchmark a second, differently-behaved ranking).

    with FakeEmbeddings() as fake:
        fake.url          # http://127.0.0.1:<port>/v1
        fake.fail = 500   # the next requests answer HTTP 500
        fake.requests     # what Parley sent
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from .server import FakeServer, RecordedRequest, Response


def fake_vector(text: str, dims: int = 256) -> list[float]:
    vec = [0.0] * dims
    text = text.lower()
    features = re.findall(r"[a-z0-9]+", text)
    chars = [c for c in text if not c.isspace()]
    features += ["".join(chars[i : i + 2]) for i in range(len(chars) - 1)]
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dims
        sign = 1.0 if digest[4] & 1 else -1.0
        vec[bucket] += sign
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


class FakeEmbeddings:
    def __init__(self, dims: int = 256, server: FakeServer | None = None) -> None:
        self.dims = dims
        self.fail: int | None = None
        self.server = server or FakeServer()
        self._own = server is None
        self.server.route("POST", "/v1/embeddings", self._handle)

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return [r for r in self.server.requests if r.path == "/v1/embeddings"]

    def start(self) -> FakeEmbeddings:
        if self._own:
            self.server.start()
        return self

    def stop(self) -> None:
        if self._own:
            self.server.stop()

    def __enter__(self) -> FakeEmbeddings:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _handle(self, req: RecordedRequest) -> Response:
        if self.fail:
            return Response(self.fail, {"error": {"message": "embedding backend down", "type": "server_error"}})
        body = req.json() or {}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return Response(400, {"error": {"message": "input must be a non-empty string or array"}})
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(str(text), self.dims)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(t).split()) for t in inputs)
        return Response(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )
