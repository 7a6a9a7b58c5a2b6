"""Parley's embeddable web chat: the visitor token endpoint, ``/widget.js``, the ``/chat/<key>/`` page
and the ``/ws/chat/<key>/`` consumer. Replies reach the socket through the "web" platform adapter."""
