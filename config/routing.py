"""WebSocket routes: the web chat's visitors, and the agents' inbox (staff session, same origin)."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path, re_path

from apps.channels.platforms.web.consumer import ChatConsumer
from apps.core.edge import socket_not_found
from apps.inbox.consumers import InboxConsumer

websocket_urlpatterns: list = [
    path("ws/chat/<str:key>/", ChatConsumer.as_asgi()),
    # The admin's session cookie signs the agent in; the Origin check keeps other sites' pages out.
    path("ws/inbox/", AllowedHostsOriginValidator(AuthMiddlewareStack(InboxConsumer.as_asgi()))),
    # Last: any other path is closed with 4404, not the router's "No route found" traceback.
    re_path(r"", socket_not_found),
]
