"""WebSocket routes. The web-chat consumer registers here."""

websocket_urlpatterns: list = []
