from __future__ import annotations

from typing import Any

from .models import AuditLog


def audit_record(
    *, action: str, actor: Any = None, tenant: Any = None, target: str = "", request: Any = None, **detail: Any
) -> AuditLog:
    """Write one audit log row. ``detail`` must not contain secrets or unmasked PII."""
    ip = request.META.get("REMOTE_ADDR") if request is not None else None
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditLog.objects.create(action=action, actor=actor, tenant=tenant, target=target[:200], detail=detail, ip=ip)
