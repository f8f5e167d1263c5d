"""Every member of a programme has a points account in the entry tier, whichever way they arrived: the API, the
admin, the member import (set-based), a merge, the demo; and the home page's tier card counts them all."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty import ledger
from loyalty.models import Account, TierChange
from members import services as member_services
from members.importing.services import members_import
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def standing(member):
    account = Account.objects.select_related("tier", "program").get(member=member)
    return account.program.code, account.tier.code, account.balance


def test_a_member_signed_up_through_the_api_has_an_account_in_the_entry_tier(api):
    response = api.post("/api/v1/members/", {"name": "王芳", "phone": "13800138001"}, format="json")
    assert response.status_code == 201
    member = Member.objects.get(member_no=response.json()["member_no"])
    assert standing(member) == ("demo", "basic", 0)
    assert list(TierChange.objects.filter(account__member=member).values_list("reason", "to_tier__code")) == [
        ("joined", "basic")
    ]


def test_a_member_added_in_the_admin_has_an_account(admin_client, program):
    url = reverse("admin:members_member_add")
    page = admin_client.get(url)
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name, field in management.fields.items():
            data[management.add_prefix(name)] = management.initial.get(name, field.initial)
    data.update(name="林静", phone="13912345678", email="", gender="unknown", birthday="", city="", country="")
    data.update(language="", referrer="")
    assert admin_client.post(url, data).status_code == 302
    member = Member.objects.get(phone="+8613912345678")
    assert standing(member) == ("demo", "basic", 0)
    # and the member page shows the loyalty panel
    html = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert reverse("admin:loyalty_account_change", args=[Account.objects.get(member=member).pk]) in html


def customer_list(count):
    lines = ["name,phone,channel"] + [f"会员{index},1390000{index:04d},web" for index in range(count)]
    return ("\n".join(lines) + "\n").encode()


def test_imported_members_have_accounts_opened_in_one_statement(program):
    from members.demo import demo_channels

    demo_channels()
    with CaptureQueriesContext(connection) as queries:
        result = members_import(data=customer_list(30))
    assert result.counts["new"] == 30
    assert Account.objects.filter(program=program, tier__code="basic").count() == 30
    assert TierChange.objects.filter(reason="joined").count() == 30
    inserts = [query["sql"] for query in queries if "INSERT INTO loyalty_account" in query["sql"]]
    assert len(inserts) == 1 and "SELECT m.id" in inserts[0]  # one INSERT ... SELECT for all 30, not a loop


def test_the_preview_of_an_import_opens_no_account(program):
    from members.demo import demo_channels

    demo_channels()
    members_import(data=customer_list(5), dry_run=True)
    assert Account.objects.count() == 0 and Member.objects.count() == 0


def test_a_merge_leaves_the_kept_member_with_an_account(program):
    keep, drop = MemberFactory(), MemberFactory()  # made directly, without accounts (as before this change)
    member_services.members_merge(keep=keep, drop=drop)
    assert standing(keep) == ("demo", "basic", 0)
    assert not Account.objects.filter(member=drop).exists()


def test_demo_members_all_have_accounts(program):
    call_command("seed_demo", "--members", "25", "--no-staff", stdout=None)
    assert Account.objects.filter(program__code="demo").count() == Member.objects.count() == 25


def test_opening_accounts_again_changes_nothing(program):
    members = [MemberFactory() for _ in range(3)]
    assert ledger.accounts_open(member_ids=[member.pk for member in members]) == 3
    assert ledger.accounts_open(member_ids=[member.pk for member in members]) == 0
    assert ledger.accounts_open() == 0
    assert Account.objects.count() == 3 and TierChange.objects.count() == 3


def test_with_several_programmes_a_member_joins_the_programme_of_their_channel(program, channel):
    from loyalty.models import Program, Tier

    other = Program.objects.create(code="hk", name="HK", currency="HKD")
    Tier.objects.create(program=other, code="hk-basic", name="基本", rank=0)
    member = MemberFactory(join_channel=channel)
    loose = MemberFactory(join_channel=None)  # no channel, and no single programme to fall back on
    ledger.accounts_open(member_ids=[member.pk, loose.pk])
    assert standing(member) == ("demo", "basic", 0)
    assert not Account.objects.filter(member=loose).exists()


def test_the_home_page_tier_card_counts_every_member(admin_client, program):
    from members.demo import demo_channels

    demo_channels()
    members_import(data=customer_list(7))
    cards = admin_client.get("/admin/").context["dashboard_cards"]
    tier_cards = [card for card in cards if card.get("hint", "").startswith("普通会员")]
    assert [card["hint"] for card in tier_cards] == ["普通会员 7"]
