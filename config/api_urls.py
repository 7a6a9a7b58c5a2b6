"""The REST API under /api/v1/: JWT (simplejwt) or session authentication, tenant-scoped."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
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

urlpatterns = [
    path("v1/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
