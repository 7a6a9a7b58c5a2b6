from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """``manage.py run``: one process that migrates, serves HTTP and WebSocket, runs the in-process beat
    and holds the long connections. It composes the other apps, so it sits above all of them."""

    name = "apps.runtime"
    label = "runtime"
    verbose_name = "Parley in one process"
