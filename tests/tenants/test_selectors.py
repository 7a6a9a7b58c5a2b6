"""Who may read, manage, review and reveal: the people rules in apps/tenants/selectors.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from apps.tenants.selectors import MANAGE_ROLES, can_manage, can_reveal_pii, can_review, tenant_ids_for
from tests.factories import make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tenants():
    return make_tenant("acme"), make_tenant("globex")


def test_a_reviewer_reads_their_tenant_only_and_manages_nothing(two_tenants):
    acme, globex = two_tenants
    reviewer = make_user("rita", tenant=acme, role="reviewer")
    assert tenant_ids_for(reviewer) == {acme.pk}
    assert tenant_ids_for(reviewer, roles=MANAGE_ROLES) == set()
    assert can_review(reviewer, acme.pk) and not can_review(reviewer, globex.pk)
    assert not can_manage(reviewer, acme.pk)


def test_an_admin_manages_their_tenant_only(two_tenants):
    acme, globex = two_tenants
    admin = make_user("ada", tenant=acme, role="admin")
    assert can_manage(admin, acme.pk) and can_review(admin, acme.pk)
    assert not can_manage(admin, globex.pk) and not can_review(admin, globex.pk)


def test_an_inactive_tenant_grants_nothing(two_tenants):
    acme, _ = two_tenants
    owner = make_user("otto", tenant=acme, role="owner")
    acme.is_active = False
    acme.save()
    owner = type(owner).objects.get(pk=owner.pk)  # a fresh request's user: no remembered ids
    assert tenant_ids_for(owner) == set()
    assert not can_review(owner, acme.pk)


def test_revealing_personal_data_needs_the_permission_and_the_tenant(two_tenants):
    acme, globex = two_tenants
    reviewer = make_user("rita", tenant=acme, role="reviewer")
    assert not can_reveal_pii(reviewer, acme.pk)
    reviewer.user_permissions.add(Permission.objects.get(codename="reveal_pii"))
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)  # permissions are cached per user object
    assert can_reveal_pii(reviewer, acme.pk)
    assert not can_reveal_pii(reviewer, globex.pk)


def test_a_superuser_sees_every_tenant(two_tenants):
    acme, globex = two_tenants
    root = make_user("root", superuser=True)
    assert tenant_ids_for(root) is None
    assert can_manage(root, globex.pk) and can_reveal_pii(root, acme.pk)
