"""The admin index dashboard: per-tenant figures for 24 hours and 7 days, drawn as charts, scoped
to the user's tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.conversations.review import record_feedback
from apps.conversations.selectors import dashboard_figures, percentile
from tests.factories import PASSWORD
from tests.review.conftest import make_turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic(world):
    """Tenant A: besides the world's answer (800 ms, model), four answers today and one 3 days ago."""
    a = world["tenant-a"]
    conv = a["conv"]
    now = timezone.now()
    make_turn(conv, "q1", "a1", response_ms=100, at=now - timedelta(minutes=5))
    _, fallback = make_turn(conv, "q2", "a2", response_ms=200, fallback_used=True, at=now - timedelta(hours=2))
    make_turn(conv, "q3", "a3", response_ms=300, failed=True, source="failure", at=now - timedelta(hours=3))
    _, known = make_turn(conv, "q4", "a4", response_ms=1000, source="knowledge", cached=True, model_name="")
    make_turn(conv, "q5", "a5", response_ms=500, at=now - timedelta(days=3))
    record_feedback(message=fallback, rating=4, source="page")
    record_feedback(message=known, rating=2, source="button")
    return world


def test_figures_per_window(traffic):
    a, b = traffic["tenant-a"]["tenant"], traffic["tenant-b"]["tenant"]
    data = dashboard_figures(tenant_ids={a.pk})
    assert [t["tenant"] for t in data["tenants"]] == [a]  # tenant B is not in scope
    day = data["tenants"][0]["windows"]["24h"]
    assert day["volume"] == 5
    assert sum(day["volume_series"]) == 5 and len(day["volume_series"]) == 24
    assert day["p50_ms"] == pytest.approx(300, abs=1)
    assert day["p99_ms"] == pytest.approx(992, abs=1)
    assert day["success_rate"] == pytest.approx(3 / 4)
    assert day["fallback_rate"] == pytest.approx(1 / 4)
    assert day["cache_hit_rate"] == pytest.approx(1 / 5)
    assert day["avg_rating"] == pytest.approx(3.0) and day["ratings"] == 2
    week = data["tenants"][0]["windows"]["7d"]
    assert week["volume"] == 6 and len(week["volume_series"]) == 7
    assert week["p50_ms"] == pytest.approx(400, abs=1)
    assert week["success_rate"] == pytest.approx(4 / 5)
    # Superusers see every tenant.
    every = dashboard_figures(tenant_ids=None, now=timezone.now() + timedelta(seconds=1))
    assert {t["tenant"] for t in every["tenants"]} == {a, b}


def test_percentile_matches_postgres_percentile_cont():
    assert percentile([100, 200, 300, 800, 1000], 0.5) == 300
    assert percentile([100, 200, 300, 800, 1000], 0.99) == pytest.approx(992)
    assert percentile([], 0.5) is None


def test_admin_index_shows_charts_for_own_tenants_only(client, traffic):
    assert client.login(username="reviewer-a", password=PASSWORD)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Conversations at a glance" in html
    assert html.count('<svg class="parley-chart"') == 6  # volume, response time, rates × 2 windows
    assert "TENANT-A Corp" in html and "TENANT-B Corp" not in html
    assert "Last 24 hours" in html and "Last 7 days" in html
    assert "75.0%" in html  # model success in the last 24 hours
    assert "3.00 (2)" in html  # average rating and how many ratings


def test_superuser_index_shows_every_tenant(client, traffic):
    assert client.login(username="root", password=PASSWORD)
    html = client.get(reverse("admin:index")).content.decode()
    assert "TENANT-A Corp" in html and "TENANT-B Corp" in html
    assert html.count('<svg class="parley-chart"') == 12
