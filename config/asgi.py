"""ASGI entry point: webhooks go to the webhook lane, other HTTP to Django, WebSocket to the web-chat
consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402,F401

from apps.channels.asgi import WebhookLane  # noqa: E402
from apps.core.edge import EdgeGuard  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

webhook_lane = WebhookLane(django_asgi_app)
# EdgeGuard first: a path or query no route can hold (a NUL in a channel key …) is a 404 / 400, or a
# WebSocket closed with 4404, before the webhook lane or a consumer looks anything up (apps/core/edge.py).
application = EdgeGuard(
    ProtocolTypeRouter(
        {
            # /webhooks/… skip the middleware stack and run on long-lived threads (apps/channels/asgi.py).
            "http": webhook_lane,
            # Origin checks are per channel (its allowed origins), done by the consumer itself.
            "websocket": URLRouter(websocket_urlpatterns),
        }
    )
)

# What the first webhook would otherwise pay for, before this process accepts any (apps/runtime/warmup.py).
from apps.runtime.warmup import warm  # noqa: E402

warm("web")
