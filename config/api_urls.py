"""The REST API under /api/v1/: JWT (simplejwt) or session authentication, tenant-scoped.

Its OpenAPI schema is at /api/schema/ (JSON, which a browser shows; ``?format=yaml`` for YAML), with
Swagger UI at /api/docs/ and ReDoc at /api/redoc/, their scripts served by Parley itself
(drf-spectacular-sidecar: no CDN). All three are for signed-in people; a browser that is not signed
in is sent to the sign-in page first.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.renderers import OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from apps.bots.api import BotViewSet, KnowledgeEntryViewSet
from apps.conversations.api import ConversationViewSet
from apps.knowledge.api import DocumentViewSet, KnowledgeBaseViewSet
from apps.tenants.api import TenantViewSet

router = DefaultRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("bots", BotViewSet, basename="bot")
router.register("knowledge", KnowledgeEntryViewSet, basename="knowledge")
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("knowledge-bases", KnowledgeBaseViewSet, basename="knowledge-base")
router.register("documents", DocumentViewSet, basename="document")


class SchemaView(SpectacularAPIView):
    """The schema as ``application/json`` first, so a browser opens it instead of downloading a
    ``vnd.oai.openapi`` file; YAML when asked for (``Accept: application/yaml`` or ``?format=yaml``)."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiYamlRenderer2, OpenApiYamlRenderer]


class RedocView(SpectacularRedocView):
    schema = None  # a page about the API, not part of it
    """ReDoc builds its search index in a worker it starts from a ``blob:`` URL."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; frame-ancestors 'none'"
        )
        return response


def _signed_in(view):
    return login_required(view, login_url=settings.LOGIN_URL)


urlpatterns = [
    path("v1/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("v1/", include(router.urls)),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", _signed_in(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("redoc/", _signed_in(RedocView.as_view(url_name="api-schema")), name="api-redoc"),
]
