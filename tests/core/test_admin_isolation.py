"""Tenant isolation in every admin widget: every registered admin's list page (with each of its
filters, counts and a filter pointed at another tenant's rows), add and change forms and
autocompletes, walked as each role of tenant "alpha", never shows a name or an id of tenant "bravo".

Bravo's rows carry "bravo" in every name and ids 7700xx, so a leak shows whichever widget it comes
from; the walk takes the admins from ``admin.site._registry``, so a new admin is walked too."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import NoReverseMatch, reverse

from apps.bots.models import KnowledgeEntry
from apps.conversations.models import Conversation, Feedback, InboundMessage, Message
from apps.core.models import AuditLog
from apps.knowledge.models import Document, KnowledgeBase
from apps.tenants.models import Membership
from apps.workflows.models import BotToolServer, ToolServer, Workflow, WorkflowRun
from tests.factories import PASSWORD, make_bot, make_channel, make_model, make_tenant, make_user

pytestmark = pytest.mark.django_db

BRAVO_ID = re.compile(r"(?<![\d.])7700\d\d(?![\d.])")
ROLES = ["owner", "admin", "reviewer"]


def _tenant_world(prefix: str, pk: int | None) -> dict:
    """One tenant with a row of every kind the admin shows; with ``pk``, ids from ``pk`` up."""
    ids = iter(range(pk, pk + 100)) if pk else None

    def next_pk() -> dict:
        return {"pk": next(ids)} if ids else {}

    tenant = make_tenant(prefix, name=f"{prefix.title()} Corp", **next_pk())
    owner = get_user_model().objects.create_user(
        f"{prefix}-owner", f"{prefix}-owner@{prefix}.example", PASSWORD, is_staff=True, **next_pk()
    )
    Membership.objects.create(user=owner, tenant=tenant, role="owner", **next_pk())
    model = make_model(tenant, name=f"{prefix}-model", endpoint=f"https://{prefix}.example/v1", **next_pk())
    bot = make_bot(tenant, slug=f"{prefix}-bot", name=f"{prefix.title()} Bot", model=model, **next_pk())
    KnowledgeEntry.objects.create(bot=bot, question=f"{prefix} question?", answer=f"{prefix} answer", **next_pk())
    channel = make_channel(bot, platform="web", key=f"{prefix}-web", name=f"{prefix} web", **next_pk())
    conv = Conversation.objects.create(
        tenant=tenant, bot=bot, channel=channel, chat_id=f"{prefix}-chat", user_id=f"{prefix}-user", **next_pk()
    )
    inbound = InboundMessage.objects.create(
        channel=channel, platform_message_id=f"{prefix}-pm", chat_id=f"{prefix}-chat", conversation=conv, **next_pk()
    )
    message = Message.objects.create(
        conversation=conv, role="assistant", text=f"{prefix} answer text", inbound=inbound, **next_pk()
    )
    Feedback.objects.create(message=message, rating=1, comment=f"{prefix} feedback", **next_pk())
    workflow = Workflow.objects.create(
        tenant=tenant,
        name=f"{prefix} workflow",
        trigger_value=f"{prefix}flow",
        url=f"https://{prefix}.example/hook",
        **next_pk(),
    )
    WorkflowRun.objects.create(workflow=workflow, error=f"{prefix} run error", **next_pk())
    server = ToolServer.objects.create(
        tenant=tenant, name=f"{prefix} tools", url=f"https://{prefix}.example/mcp", **next_pk()
    )
    BotToolServer.objects.create(bot=bot, server=server, tools=[f"{prefix}_lookup"], **next_pk())
    kb = KnowledgeBase.objects.create(tenant=tenant, name=f"{prefix} handbook", **next_pk())
    Document.objects.create(
        knowledge_base=kb,
        title=f"{prefix} document",
        kind="text",
        text=f"{prefix} text",
        state="failed",
        error=f"{prefix} error",
        **next_pk(),
    )
    AuditLog.objects.create(
        action=f"{prefix}.changed", tenant=tenant, actor=owner, target=f"{prefix} target", **next_pk()
    )
    return {"tenant": tenant, "owner": owner, "bot": bot, "model": model, "channel": channel, "conv": conv}


@pytest.fixture
def world():
    alpha = _tenant_world("alpha", None)
    users = {"owner": alpha["owner"]}
    for role in ("admin", "reviewer"):  # before bravo's: SQLite numbers new rows after the highest id
        users[role] = make_user(f"alpha-{role}", tenant=alpha["tenant"], role=role)
    bravo = _tenant_world("bravo", 770001)
    get_user_model().objects.create_superuser("bravo-root", "bravo-root@operator.example", PASSWORD, pk=770099)
    return {"alpha": alpha, "bravo": bravo, "users": users}


def _leaks(html: str, asked: str = "") -> list[str]:
    """Bravo's ids (but the one the URL itself asked for, which the page echoes in its links) and
    names in ``html``."""
    found = [m.group(0) for m in BRAVO_ID.finditer(html) if m.group(0) not in asked]
    lowered = html.lower()
    start = lowered.find("bravo")
    if start >= 0:
        found.append(html[max(0, start - 80) : start + 80])
    return found


def _pages(client, model, model_admin, request_user, alpha_obj) -> list[str]:
    """The URLs of every widget of one admin: its list (plain, with facet counts, with each relational
    filter pointed at bravo's row), add form, one alpha row's change form, and its autocompletes."""
    meta = model._meta
    name = f"admin:{meta.app_label}_{meta.model_name}"
    urls = [reverse(f"{name}_changelist"), reverse(f"{name}_changelist") + "?_facets=True"]
    for spec in model_admin.list_filter:
        path = spec[0] if isinstance(spec, (tuple, list)) else spec
        if isinstance(path, str):
            urls.append(reverse(f"{name}_changelist") + f"?{path}__id__exact=770001")
            urls.append(reverse(f"{name}_changelist") + f"?{path}__exact=770002")
    urls.append(reverse(f"{name}_add"))
    if alpha_obj is not None:
        urls.append(reverse(f"{name}_change", args=[alpha_obj.pk]))
    for field in meta.get_fields():
        if getattr(field, "concrete", False) and (field.many_to_one or field.many_to_many):
            urls.append(
                reverse("admin:autocomplete")
                + f"?term=&app_label={meta.app_label}&model_name={meta.model_name}&field_name={field.name}"
            )
    return urls


@pytest.mark.timeout(900)  # a few hundred pages per role; a busy CI machine is slow
@pytest.mark.parametrize("role", ROLES)
def test_no_admin_widget_shows_another_tenants_names_or_ids(client, world, role):
    user = world["users"][role]
    client.force_login(user)
    walked, leaks = 0, []
    pages = ["/admin/", "/admin/start/"]
    for model, model_admin in admin.site._registry.items():
        alpha_obj = model._default_manager.exclude(pk__gte=770000).order_by("pk").first()
        try:
            pages += _pages(client, model, model_admin, user, alpha_obj)
        except NoReverseMatch:
            continue
    for url in pages:
        response = client.get(url, follow=True)
        assert response.status_code < 500, url
        walked += 1
        if response.status_code == 200:
            leaks += [f"{url}: {leak}" for leak in _leaks(response.content.decode(), asked=url)]
    assert walked > 60
    assert not leaks, "\n".join(sorted(set(leaks))[:30])


def test_a_membership_goes_only_to_people_the_admin_may_manage(client, world):
    alpha, bravo = world["alpha"], world["bravo"]
    client.force_login(world["users"]["admin"])
    add = reverse("admin:tenants_membership_add")
    form = client.get(add).content.decode()
    assert "alpha-reviewer" in form and not _leaks(form)
    # Someone of another tenant, or the operator, by id: refused.
    for someone in (bravo["owner"], get_user_model().objects.get(username="bravo-root")):
        response = client.post(add, {"user": someone.pk, "tenant": alpha["tenant"].pk, "role": "admin"})
        assert response.status_code == 200 and not Membership.objects.filter(user=someone, tenant=alpha["tenant"])
    # The operator by e-mail: refused with the same words as an unknown address.
    refused = client.post(add, {"email": "bravo-root@operator.example", "tenant": alpha["tenant"].pk, "role": "admin"})
    unknown = client.post(add, {"email": "nobody@nowhere.example", "tenant": alpha["tenant"].pk, "role": "admin"})
    assert "No account can be added with this address" in refused.content.decode()
    assert "No account can be added with this address" in unknown.content.decode()
    assert not Membership.objects.filter(user__is_superuser=True).exists()
    # An account invited by its e-mail address: added.
    invited = get_user_model().objects.create_user("new-colleague", "colleague@alpha.example", PASSWORD, is_staff=True)
    added = client.post(add, {"email": "Colleague@alpha.example", "tenant": alpha["tenant"].pk, "role": "reviewer"})
    assert added.status_code == 302
    assert Membership.objects.filter(user=invited, tenant=alpha["tenant"], role="reviewer").exists()
    # Someone already in the tenant, picked from the list into the same tenant again: a duplicate.
    again = client.post(add, {"user": invited.pk, "tenant": alpha["tenant"].pk, "role": "admin"})
    assert again.status_code == 200 and Membership.objects.filter(user=invited).count() == 1
    # Nor into another tenant.
    other = client.post(add, {"user": invited.pk, "tenant": bravo["tenant"].pk, "role": "admin"})
    assert other.status_code == 200 and not Membership.objects.filter(tenant=bravo["tenant"], user=invited).exists()
