"""Static files under ASGI without Django's warning.

WhiteNoise hands Django a file response that reads its file synchronously. Served by uvicorn (the
ASGI handler), Django then warns on every static file: "StreamingHttpResponse must consume
synchronous iterators in order to serve them asynchronously". Under ASGI this middleware gives the
response an asynchronous iterator instead, reading the file in blocks on a worker thread; under
WSGI the response stays as WhiteNoise made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from whitenoise.middleware import WhiteNoiseMiddleware

_next = sync_to_async(next, thread_sensitive=False)


async def _blocks(blocks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while True:
        block = await _next(blocks, None)
        if block is None:
            return
        yield block


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file, request):
        response = WhiteNoiseMiddleware.serve(static_file, request)
        if isinstance(request, ASGIRequest) and not response.is_async:
            response.streaming_content = _blocks(iter(response.streaming_content))
        return response
