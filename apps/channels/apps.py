from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImChannelsConfig(AppConfig):
    # The label is not "channels" so it never clashes with Django Channels' own app label.
    name = "apps.channels"
    label = "im_channels"
    verbose_name = _("IM channels")

    def ready(self) -> None:
        from . import services  # noqa: F401 - connects the signals that clear cached channel lookups
