from django.apps import AppConfig


class SetupConfig(AppConfig):
    """The first-run setup wizard: the admin account, the first tenant, model, bot and web chat."""

    name = "apps.setup"
    label = "setup"
    verbose_name = "First-run setup"
