"""Which tenants a user may read or manage. The one place tenancy rules for people live."""

from __future__ import annotations

from typing import Any

from .models import Membership, Tenant

MANAGE_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)
READ_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.REVIEWER)
#: Who answers users in the inbox (human handoff): agents, and the owners and admins above them.
HANDOFF_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.AGENT)


def tenant_ids_for(user: Any, *, roles: tuple[str, ...] = READ_ROLES) -> set[int] | None:
    """Ids of the active tenants where ``user`` has one of ``roles``; None means every tenant
    (superusers). Anonymous or inactive users get the empty set."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if user.is_superuser:
        return None
    cache_attr = f"_parley_tenant_ids_{'_'.join(roles)}"
    cached = getattr(user, cache_attr, None)
    if cached is None:
        cached = set(
            Membership.objects.filter(user=user, role__in=roles, tenant__is_active=True).values_list(
                "tenant_id", flat=True
            )
        )
        setattr(user, cache_attr, cached)
    return cached


# --- review: reading conversations, turning corrections into knowledge, revealing personal data ---
def _tenant_in(ids: set[int] | None, tenant_id: int) -> bool:
    return ids is None or tenant_id in ids


def can_review(user: Any, tenant_id: int) -> bool:
    """Owners, admins and reviewers of the tenant (and superusers) may read, flag and correct."""
    return _tenant_in(tenant_ids_for(user, roles=READ_ROLES), tenant_id)


def can_manage(user: Any, tenant_id: int) -> bool:
    """Owners and admins of the tenant (and superusers) may also turn corrections into knowledge."""
    return _tenant_in(tenant_ids_for(user, roles=MANAGE_ROLES), tenant_id)


def can_handle_handoffs(user: Any, tenant_id: int) -> bool:
    """Agents, owners and admins of the tenant (and superusers) may claim, answer and hand back
    its conversations in the inbox."""
    return _tenant_in(tenant_ids_for(user, roles=HANDOFF_ROLES), tenant_id)


def can_reveal_pii(user: Any, tenant_id: int | None = None) -> bool:
    """Superusers, and staff holding ``conversations.reveal_pii`` who may read the tenant."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if not user.has_perm("conversations.reveal_pii"):
        return False
    return tenant_id is None or can_review(user, tenant_id)


def sees_one_tenant(user: Any) -> bool:
    """True when ``user`` can read at most one tenant (a superuser too, on an install with one):
    then a tenant column or filter would only ever show one name."""
    ids = tenant_ids_for(user, roles=READ_ROLES)
    if ids is None:
        return Tenant.objects.all()[:2].count() <= 1
    return len(ids) <= 1


# --- people a tenant admin may give memberships to ---------------------------------------------------
def manageable_users(user: Any) -> Any:
    """The accounts ``user`` may pick when granting a membership: for superusers every account; for
    owners and admins the people already in one of the tenants they manage (never a superuser).
    Anyone else is reached by e-mail (``invitable_user``), not by browsing the install's accounts."""
    from django.contrib.auth import get_user_model

    accounts = get_user_model().objects.all()
    ids = tenant_ids_for(user, roles=MANAGE_ROLES)
    if ids is None:
        return accounts
    return accounts.filter(memberships__tenant_id__in=ids, is_superuser=False).distinct() if ids else accounts.none()


def invitable_user(email: str) -> Any | None:
    """The one account, not a superuser's, whose e-mail address is ``email`` (case-insensitive), or
    None — when there is none, several, or a superuser's: the caller says the same in every case."""
    from django.contrib.auth import get_user_model

    email = (email or "").strip()
    if not email:
        return None
    found = list(get_user_model().objects.filter(email__iexact=email)[:2])
    if len(found) != 1 or found[0].is_superuser:
        return None
    return found[0]
