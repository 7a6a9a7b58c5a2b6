"""WebSocket routes. The web-chat consumer registers here."""

from django.urls import path

from apps.channels.webchat.consumer import ChatConsumer

websocket_urlpatterns: list = [
    path("ws/chat/<str:key>/", ChatConsumer.as_asgi()),
]
