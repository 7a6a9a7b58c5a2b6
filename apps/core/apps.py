from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Parley core"

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = "Parley"
        admin.site.site_title = "Parley admin"
        admin.site.index_title = "Tenants, bots, channels and conversations"
