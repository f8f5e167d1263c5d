"""Privacy (PIPL, GDPR): one member's personal data as a JSON file, erasure on request, the retention rule
(issue 9, item 11)."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.models import Account, Coupon, PointsTransaction
from loyalty.tasks import run_daily_jobs
from members import services
from members.models import (
    ChannelIdentity,
    Consent,
    ConsentChange,
    Event,
    Member,
    MemberHistory,
    MemberTag,
    Order,
)
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

# An hour ago: within every programme limit on how old a partner's order or event may be.
WHEN = (timezone.now() - dt.timedelta(hours=1)).isoformat()


@pytest.fixture
def customer(api):
    """A member with a bit of everything: identity, consents and their history, a tag, an order with a line and a
    refund, an event, points, a coupon."""
    body = api.post(
        "/api/v1/members/",
        {
            "name": "张伟",
            "phone": "13800138000",
            "email": "zhang.wei@example.com",
            "birthday": "1990-05-17",
            "city": "上海",
            "external_id": "CARD-1",
            "consents": {"sms": True, "email": True},
        },
        format="json",
    ).json()
    no = body["member_no"]
    api.patch(f"/api/v1/members/{no}/", {"consents": {"sms": False}, "city": "杭州"}, format="json")
    order = {"order_id": "O-1", "member_no": no, "amount": "1500.00", "occurred_at": WHEN}
    order["lines"] = [{"sku": "MUG-1", "name": "杯子", "amount": "1500.00"}]
    assert api.post("/api/v1/orders/", order, format="json").status_code == 201
    api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "100.00"}, format="json")
    event = {"event_id": "E-1", "member_no": no, "type": "review", "occurred_at": WHEN}
    api.post("/api/v1/events/", {**event, "attributes": {"text": "张伟说很好"}}, format="json")
    api.post("/api/v1/redemptions/", {"redemption_id": "X-1", "member_no": no, "reward_code": "CNY10"}, format="json")
    member = Member.objects.get(member_no=no)
    services.members_tag(member_ids=[member.pk], tag=services.tag_get_or_create(name="VIP"))
    return member


@pytest.fixture
def clerk(client, django_user_model):
    """A staff user who may view members but holds neither privacy permission."""
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-2026", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(user)
    client.user = user
    return client


def grant(client, codename):
    client.user.user_permissions.add(Permission.objects.get(codename=codename))


def ledger_state(member):
    return {
        "orders": list(Order.objects.filter(member=member).values_list("order_id", "amount", "refunded_amount")),
        "ledger": list(PointsTransaction.objects.filter(account__member=member).values_list("kind", "points")),
        "balances": list(Account.objects.filter(member=member).values_list("balance", "lifetime_earned")),
        "coupons": Coupon.objects.filter(member=member).count(),
    }


def test_staff_with_the_permission_download_one_members_data_as_json_and_it_is_logged(clerk, customer):
    grant(clerk, "export_personal_data")
    url = reverse("admin:members_member_personal_data", args=[customer.pk])
    response = clerk.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="member-{customer.member_no}-personal-data.json"'
    data = json.loads(response.content)
    assert data["member"]["name"] == "张伟" and data["member"]["phone"] == "+8613800138000"
    assert data["member"]["birthday"] == "1990-05-17" and data["member"]["city"] == "杭州"
    assert data["identities"][0]["external_id"] == "CARD-1"
    assert {(c["channel"], c["granted"]) for c in data["consents"]} == {("sms", False), ("email", True)}
    assert [(c["channel"], c["granted"]) for c in data["consent_history"]] == [
        ("sms", True),
        ("email", True),
        ("sms", False),
    ]
    assert data["tags"] == ["VIP"]
    [order] = data["orders"]
    assert (order["order_id"], order["amount"], order["refunded_amount"]) == ("O-1", "1500.00", "100.00")
    assert order["lines"][0]["sku"] == "MUG-1" and order["refunds"][0]["refund_id"] == "R-1"
    assert data["events"][0]["attributes"] == {"text": "张伟说很好"}
    [account] = data["points"]
    assert account["program__code"] == "demo"
    assert [row["kind"] for row in account["ledger"]] == ["earn", "reverse", "earn", "redeem"]
    assert account["redemptions"][0]["reward__code"] == "CNY10"
    assert len(data["coupons"]) == 1
    logged = MemberHistory.objects.get(member=customer, action="personal_data_exported")
    assert logged.actor == clerk.user
    page = clerk.get(reverse("admin:members_member_change", args=[customer.pk])).content.decode()
    assert url in page


def test_personal_data_export_and_erasure_need_their_permissions(clerk, customer):
    before = ledger_state(customer)
    page = clerk.get(reverse("admin:members_member_change", args=[customer.pk])).content.decode()
    assert "personal-data" not in page and "/erase/" not in page
    assert clerk.get(reverse("admin:members_member_personal_data", args=[customer.pk])).status_code == 403
    assert clerk.get(reverse("admin:members_member_erase", args=[customer.pk])).status_code == 403
    response = clerk.post(reverse("admin:members_member_erase", args=[customer.pk]), {"reason": "asked"})
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "张伟" and customer.erased_at is None
    assert not MemberHistory.objects.filter(member=customer, action__in=["personal_data_exported", "erased"]).exists()
    assert ledger_state(customer) == before


def test_erasure_in_the_admin_anonymises_frees_contacts_and_keeps_the_books(clerk, customer, api):
    grant(clerk, "erase_member")
    before = ledger_state(customer)
    url = reverse("admin:members_member_erase", args=[customer.pk])
    assert clerk.get(url).status_code == 200
    refused = clerk.post(url, {"reason": "   "})
    assert refused.status_code == 200 and refused.context["form"].errors
    customer.refresh_from_db()
    assert customer.erased_at is None

    response = clerk.post(url, {"reason": "本人申请 2026-11-30, ticket 4711"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.email, customer.birthday, customer.city) == (
        "(erased)",
        None,
        None,
        None,
        "",
    )
    assert customer.status == "closed" and customer.erased_at is not None and customer.closed_at is not None
    assert not ChannelIdentity.objects.filter(member=customer).exists()
    assert not MemberTag.objects.filter(member=customer).exists()
    assert not Consent.objects.filter(member=customer, granted=True).exists()
    assert ConsentChange.objects.filter(member=customer, granted=False, source="erasure").count() == 1  # e-mail
    assert Event.objects.get(member=customer).attributes == {}
    assert not MemberHistory.objects.filter(member=customer).exclude(action="erased").exclude(changes={}).exists()
    erased = MemberHistory.objects.get(member=customer, action="erased")
    assert erased.actor == clerk.user and erased.changes == {
        "reason": "本人申请 2026-11-30, ticket 4711",
        "source": "staff",
    }
    # The books are intact: orders, refunds, the ledger, balances, coupons.
    assert ledger_state(customer) == before
    assert Order.objects.aggregate(total=Sum("amount"))["total"] == Decimal("1500.00")
    # The person can join again, as a new member, with the same phone, e-mail and card.
    again = api.post(
        "/api/v1/members/",
        {"name": "张伟", "phone": "13800138000", "email": "zhang.wei@example.com", "external_id": "CARD-1"},
        format="json",
    )
    assert again.status_code == 201, again.content
    assert again.json()["member_no"] != customer.member_no
    # Erasing again changes nothing.
    services.member_erase(member=customer, reason="again")
    assert MemberHistory.objects.filter(member=customer, action="erased").count() == 1


def test_erasure_takes_the_members_merged_into_it_along(member):
    drop = MemberFactory(name="王芳", phone="+8613900139000", birthday=dt.date(1991, 1, 1))
    services.members_merge(keep=member, drop=drop)
    services.member_erase(member=member, reason="request")
    drop.refresh_from_db()
    assert (drop.name, drop.birthday, drop.erased_at is not None) == ("(erased)", None, True)
    assert all("contact" not in merge.moved for merge in member.merges_kept.all())


def test_delete_over_the_api_erases_with_the_write_scope(api, make_client, customer, channel):
    before = ledger_state(customer)
    reader = make_client(channel, scopes=["members:read"])
    url = f"/api/v1/members/{customer.member_no}/"
    assert reader.delete(url).status_code == 403
    customer.refresh_from_db()
    assert customer.erased_at is None
    response = api.delete(url)
    assert response.status_code == 204 and response.content == b""
    customer.refresh_from_db()
    assert customer.name == "(erased)" and customer.phone is None
    erased = MemberHistory.objects.get(member=customer, action="erased")
    assert erased.channel == channel and erased.changes["source"] == "api"
    assert ledger_state(customer) == before
    assert api.delete(url).status_code == 204  # erasing again: nothing more to do
    assert api.get(url).json()["name"] == "(erased)"


def test_delete_of_an_unknown_member_is_404(api):
    assert api.delete("/api/v1/members/99999999/").status_code == 404


def closed_member(days_ago, **fields):
    member = MemberFactory(status="closed", **fields)
    Member.objects.filter(pk=member.pk).update(closed_at=timezone.now() - dt.timedelta(days=days_ago))
    return member


def test_retention_off_by_default_erases_nothing(settings):
    settings.MEMBER_RETENTION_DAYS = None
    old = closed_member(400)
    assert services.members_erase_retained() is None
    old.refresh_from_db()
    assert old.erased_at is None


def test_retention_erases_members_closed_longer_than_the_setting_in_the_daily_job(settings, program):
    settings.MEMBER_RETENTION_DAYS = 30
    old, recent = closed_member(31), closed_member(29)
    active = MemberFactory()
    result = run_daily_jobs()
    assert result["members_erased"] == 1
    for each in (old, recent, active):
        each.refresh_from_db()
    assert old.erased_at is not None and old.name == "(erased)" and old.phone is None
    assert recent.erased_at is None and active.erased_at is None
    assert MemberHistory.objects.get(member=old, action="erased").changes["source"] == "retention"
    assert run_daily_jobs()["members_erased"] == 0  # nothing is erased twice
    Member.objects.filter(pk=recent.pk).update(closed_at=timezone.now() - dt.timedelta(days=40))
    call_command("run_loyalty_jobs")
    recent.refresh_from_db()
    assert recent.erased_at is not None


def test_retention_is_set_based(settings):
    def queries_for(count):
        for _ in range(count):
            closed_member(100)
        with CaptureQueriesContext(connection) as queries:
            assert services.members_erase_retained(days=30) == count
        return len(queries)

    assert queries_for(3) == queries_for(30)
