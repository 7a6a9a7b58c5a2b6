"""WebSocket routes. The web-chat consumer registers here."""

from django.urls import path, re_path

from apps.channels.webchat.consumer import ChatConsumer
from apps.core.edge import socket_not_found

websocket_urlpatterns: list = [
    path("ws/chat/<str:key>/", ChatConsumer.as_asgi()),
    # Last: any other path is closed with 4404, not the router's "No route found" traceback.
    re_path(r"", socket_not_found),
]
