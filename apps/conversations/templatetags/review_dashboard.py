"""``{% review_dashboard %}``: the admin index's figures and charts for the user's tenants."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.tenants.selectors import READ_ROLES, tenant_ids_for

from .. import review_charts, selectors

register = template.Library()


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _bucket_label(start: Any, window: selectors.Window) -> str:
    local = timezone.localtime(start)
    return local.strftime("%H:00") if window.bucket == "hour" else local.strftime("%m-%d")


def tenant_panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Display rows and SVG charts for each tenant in ``selectors.dashboard_figures`` output."""
    panels = []
    for item in data["tenants"]:
        tenant = item["tenant"]
        rows, charts = [], []
        for window in data["windows"]:
            f = item["windows"][window.key]
            labels = [_bucket_label(b, window) for b in f["bucket_starts"]]
            rating = f["avg_rating"]
            rows.append(
                {
                    "label": window.label,
                    "volume": f["volume"],
                    "p50": _ms(f["p50_ms"]),
                    "p99": _ms(f["p99_ms"]),
                    "success": _pct(f["success_rate"]),
                    "fallback": _pct(f["fallback_rate"]),
                    "cache": _pct(f["cache_hit_rate"]),
                    "rating": "—" if rating is None else f"{rating:.2f} ({f['ratings']})",
                }
            )
            charts.append(
                {
                    "caption": _("Messages · %(window)s") % {"window": window.label},
                    "svg": review_charts.bar_chart(
                        f["volume_series"],
                        labels,
                        title=_("%(tenant)s: messages, %(window)s") % {"tenant": tenant, "window": window.label},
                    ),
                }
            )
            charts.append(
                {
                    "caption": _("Response time · %(window)s") % {"window": window.label},
                    "svg": review_charts.line_chart(
                        {"p50": f["p50_series"], "p99": f["p99_series"]},
                        labels,
                        title=_("%(tenant)s: response time p50 and p99, %(window)s")
                        % {"tenant": tenant, "window": window.label},
                        unit="ms",
                    ),
                }
            )
            charts.append(
                {
                    "caption": _("Rates · %(window)s") % {"window": window.label},
                    "svg": review_charts.rate_bars(
                        [
                            (_("Model success"), f["success_rate"]),
                            (_("Fallback"), f["fallback_rate"]),
                            (_("Cache hit"), f["cache_hit_rate"]),
                            (
                                _("Avg rating"),
                                None if rating is None else rating / 5,
                                "—" if rating is None else f"{rating:.1f}/5",
                            ),
                        ],
                        title=_("%(tenant)s: rates, %(window)s") % {"tenant": tenant, "window": window.label},
                    ),
                }
            )
        panels.append({"tenant": tenant, "rows": rows, "charts": charts})
    return panels


@register.inclusion_tag("admin/conversations/dashboard.html", takes_context=True)
def review_dashboard(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    ids = tenant_ids_for(user, roles=READ_ROLES)
    if ids is not None and not ids:
        return {"show": False}
    data = selectors.dashboard_figures(tenant_ids=ids)
    return {"show": True, "panels": tenant_panels(data), "hidden": data["hidden"], "generated_at": data["generated_at"]}
