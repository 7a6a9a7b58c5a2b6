from django.contrib import admin
from django.urls import include, path

from apps.accounts.signin import AdminSignInForm
from apps.accounts.views import SessionTokenView, admin_login, admin_logout, set_language
from apps.core import metrics_views
from apps.core import views as core_views
from apps.setup import views as setup_views

urlpatterns = [
    path("", setup_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("setup/", include("apps.setup.urls")),
    path("webhooks/", include("apps.channels.urls")),
    path("feedback/", include("apps.conversations.feedback_urls")),
    path("", include("apps.channels.platforms.web.urls")),
    path("metrics", metrics_views.metrics_view, name="metrics"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("auth/oidc/", include("apps.accounts.urls")),
    path("api/v1/auth/session-token/", SessionTokenView.as_view(), name="session_token"),
    path("api/", include("config.api_urls")),
    # The admin's own sign-in (429 while locked out) and logout (plus the identity provider's).
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/logout/", admin_logout, name="admin_logout"),
    path("admin/start/", include("apps.console.urls")),
    path("admin/inbox/", include("apps.inbox.urls")),
    path("admin/", admin.site.urls),
]

# Staff sign-in (docs/security.md): the admin's password form applies PASSWORD_SIGNIN and audits.
admin.site.login_form = AdminSignInForm
