"""Which tenants a user may read or manage. The one place tenancy rules for people live."""

from __future__ import annotations

from typing import Any

from .models import Membership

MANAGE_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)
READ_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.REVIEWER)


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
