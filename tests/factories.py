"""Small factories for test data (plain functions: explicit, no magic)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from apps.bots.models import Bot, KnowledgeEntry
from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from apps.tenants.models import Membership, Tenant

PASSWORD = "correct-horse-battery-9"


def make_tenant(slug: str = "acme", **kw: Any) -> Tenant:
    return Tenant.objects.create(slug=slug, name=kw.pop("name", slug.upper() + " Corp"), **kw)


def make_user(username: str, *, superuser: bool = False, tenant: Tenant | None = None, role: str = "admin") -> Any:
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    if tenant is not None:
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def make_model(tenant: Tenant, name: str = "primary", **kw: Any) -> ModelConfig:
    kw.setdefault("provider", "openai")
    kw.setdefault("endpoint", "http://127.0.0.1:9/v1")
    kw.setdefault("model", "test-model")
    return ModelConfig.objects.create(tenant=tenant, name=name, **kw)


def make_bot(tenant: Tenant, slug: str = "helpdesk", **kw: Any) -> Bot:
    kw.setdefault("name", slug.title())
    kw.setdefault("merge_window_ms", 0)
    return Bot.objects.create(tenant=tenant, slug=slug, **kw)


def make_knowledge(bot: Bot, question: str, answer: str, **kw: Any) -> KnowledgeEntry:
    return KnowledgeEntry.objects.create(bot=bot, question=question, answer=answer, **kw)


def make_channel(bot: Bot, *, platform: str, key: str, credentials: dict | None = None, **kw: Any) -> Channel:
    return Channel.objects.create(bot=bot, platform=platform, key=key, credentials=credentials or {}, **kw)
