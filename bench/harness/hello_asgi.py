"""The ceiling: a bare ASGI app served by the same gunicorn + uvicorn-worker settings as Parley.

Any HTTP request is answered ``200 ok`` after its body is read (what a webhook ack costs with no
framework, database or queue behind it); any WebSocket is accepted and held open (what an idle
socket costs the server itself).

    gunicorn bench.harness.hello_asgi:application -k uvicorn_worker.UvicornWorker -w 2
"""

from __future__ import annotations


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept", "subprotocol": "parley.v1"})
        await send({"type": "websocket.send", "text": '{"type": "history", "messages": []}'})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
