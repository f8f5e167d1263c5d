"""Staff roles (groups kept in sync after migrate), masked phone and e-mail for roles without the "view personal
data" permission, staff notes, and the per-programme limit on one adjustment by staff."""

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.urls import reverse

from loyalty.ledger import account_get_or_create
from loyalty.models import Account, PointsTransaction
from members import roles
from members.importing.resources import EXPORT_COLUMNS
from members.masking import mask_email, mask_phone
from members.models import Member, MemberNote
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Role-test-password-2026"


def staff_in(role, username="staff"):
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # a fresh object: no cached permissions


def codenames(role):
    return {
        f"{app_label}.{codename}"
        for app_label, codename in Group.objects.get(name=role).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def test_the_five_roles_exist_with_what_each_may_do(db):
    service = codenames(roles.CUSTOMER_SERVICE)
    assert {"members.view_member", "members.add_membernote", "loyalty.view_account", "loyalty.adjust_points"} <= service
    assert not service & {
        "members.change_member",
        "members.export_member",
        "members.view_personal_data",
        "members.view_apikey",
        "loyalty.adjust_points_without_limit",
        "loyalty.export_fulfilment",
    }
    operations = codenames(roles.OPERATIONS)
    assert {
        "members.change_member",
        "members.import_member",
        "members.import_order",
        "members.export_member",
        "members.view_personal_data",
        "loyalty.change_tier",
        "loyalty.add_reward",
        "loyalty.change_fulfilment",
    } <= operations
    assert "loyalty.adjust_points_without_limit" not in operations and "auth.add_user" not in operations
    marketing = codenames(roles.MARKETING)
    assert {"members.view_member", "members.add_tag"} <= marketing
    assert not {name for name in marketing if ".export_" in name} and "members.view_personal_data" not in marketing
    analyst = codenames(roles.ANALYST)
    assert {"members.view_member", "analytics.view_dashboard", "analytics.export_dashboard"} <= analyst
    assert "members.view_personal_data" not in analyst
    # Read-only: besides viewing, only the dashboard's tables as CSV.
    assert {name for name in analyst if not name.split(".")[1].startswith("view_")} == {"analytics.export_dashboard"}
    administrator = codenames(roles.ADMINISTRATOR)
    assert administrator == {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }


def test_permissions_of_apps_added_later_land_by_pattern():
    later = [(1, "campaigns.add_campaign"), (2, "campaigns.export_campaign"), (3, "analytics.view_rfmscore")]
    later += [(4, "analytics.change_rfmscore"), (5, "members.view_member")]
    assert roles.permissions_matching(roles.ROLES[roles.MARKETING], later) == {1, 3, 5}
    assert roles.permissions_matching(roles.ROLES[roles.ANALYST], later) == {3, 5}
    assert roles.permissions_matching(roles.ROLES[roles.CUSTOMER_SERVICE], later) == {5}


def test_an_analyst_downloads_the_dashboards_tables_marketing_and_customer_service_do_not(client, program):
    export = reverse("admin:analytics_dashboard_export", args=["monthly"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(staff_in(roles.ANALYST, "analyst"))
    response = client.get(export)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.decode("utf-8-sig").splitlines()[0].startswith("Month,")
    client.force_login(staff_in(roles.MARKETING, "marketing"))
    assert client.get(reverse("admin:analytics_dashboard_changelist")).status_code == 200  # sees the dashboard
    assert client.get(export).status_code == 403  # no export of any kind
    client.force_login(staff_in(roles.CUSTOMER_SERVICE, "service"))
    assert client.get(export).status_code == 403


def test_migrate_puts_a_role_back_as_declared(db):
    group = Group.objects.get(name=roles.CUSTOMER_SERVICE)
    declared = set(group.permissions.values_list("pk", flat=True))
    group.permissions.remove(Permission.objects.get(codename="view_member"))
    group.permissions.add(Permission.objects.get(codename="export_member"))
    call_command("migrate", verbosity=0)
    assert set(group.permissions.values_list("pk", flat=True)) == declared


def test_phone_and_email_are_masked():
    assert mask_phone("+8613800138000") == "138****8000"
    assert mask_phone("+447911123456") == "+4479****3456"
    assert mask_phone("12345") == "****"
    assert mask_phone(None) is None
    assert mask_email("zhang.wei@example.com") == "z***@example.com"
    assert mask_email("") == ""


def test_customer_service_sees_masked_contacts_in_the_list_and_on_the_page(client, member):
    client.force_login(staff_in(roles.CUSTOMER_SERVICE))
    listing = client.get(reverse("admin:members_member_changelist")).content.decode()
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    # (the list has no e-mail column, to fit a 1,440-pixel screen; the member page shows it)
    assert "138****8000" in listing and "13800138000" not in listing and "zhang.wei@example.com" not in listing
    assert "138****8000" in page and "z***@example.com" in page
    assert "13800138000" not in page and "zhang.wei@example.com" not in page
    # search by the full phone still finds the member
    found = client.get(reverse("admin:members_member_changelist"), {"q": "13800138000"})
    assert list(found.context["cl"].result_list) == [member]


def test_operations_see_full_contacts(client, member):
    client.force_login(staff_in(roles.OPERATIONS))
    html = client.get(reverse("admin:members_member_changelist")).content.decode()
    assert "+8613800138000" in html
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "+8613800138000" in page and "zhang.wei@example.com" in page


def test_history_masks_changed_contacts_too(client, member, admin_user):
    from members import services

    services.member_update(member=member, data={"phone": "+8613900139000"}, actor=admin_user)
    client.force_login(staff_in(roles.CUSTOMER_SERVICE))
    html = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "139****9000" in html and "13900139000" not in html and "13800138000" not in html


def test_a_user_who_may_edit_but_not_see_contacts_keeps_them_when_saving(client, member):
    user = User.objects.create_user("editor", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_member", "change_member"]))
    client.force_login(user)
    url = reverse("admin:members_member_change", args=[member.pk])
    page = client.get(url)
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name, field in management.fields.items():
            data[management.add_prefix(name)] = management.initial.get(name, field.initial)
    data.update({"name": "张伟伟", "gender": "unknown", "phone": "+8613700137000", "email": "evil@example.com"})
    assert client.post(url, data).status_code == 302
    member.refresh_from_db()
    assert (member.name, member.phone, member.email) == ("张伟伟", "+8613800138000", "zhang.wei@example.com")


def test_an_export_by_someone_without_personal_data_is_masked(client, member):
    user = User.objects.create_user("exporter", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_member", "export_member"]))
    client.force_login(user)
    fields = {f"memberexportresource_{key}": "on" for key, _attribute, _zh in EXPORT_COLUMNS}
    text = client.post(reverse("admin:members_member_export"), {"format": "0", "resource": "0", **fields})
    row = text.content.decode("utf-8-sig").splitlines()[1].split(",")
    assert row[2:4] == ["138****8000", "z***@example.com"]


def test_customer_service_adds_a_note_but_cannot_change_the_member(client, member):
    user = staff_in(roles.CUSTOMER_SERVICE)
    client.force_login(user)
    url = reverse("admin:members_member_note", args=[member.pk])
    assert client.post(url, {"text": "  "}).status_code == 200
    assert not MemberNote.objects.exists()
    response = client.post(url, {"text": "来电：快递未到，已催"})
    assert response.status_code == 302
    note = MemberNote.objects.get()
    assert (note.member, note.text, note.created_by) == (member, "来电：快递未到，已催", user)
    assert (
        "来电：快递未到，已催" in client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    )
    change = client.post(reverse("admin:members_member_change", args=[member.pk]), {"name": "x"})
    assert change.status_code == 403
    assert Member.objects.get(pk=member.pk).name == "张伟"


@pytest.fixture
def account(program, member):
    return account_get_or_create(member=member, program=program)


def adjust(client, account, points):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # chosen with the language switch
    return client.post(reverse("admin:loyalty_account_adjust", args=[account.pk]), {"points": points, "reason": "补偿"})


def test_customer_service_adjusts_within_the_programme_limit_only(client, account, program):
    client.force_login(staff_in(roles.CUSTOMER_SERVICE))
    assert program.staff_adjustment_limit == 1000
    assert adjust(client, account, 1000).status_code == 302
    refused = adjust(client, account, 1001)
    assert refused.status_code == 200
    assert refused.context["form"].non_field_errors() == [
        "One adjustment may move at most 1000 points; ask a colleague who may go beyond it."
    ]
    assert adjust(client, account, -1001).status_code == 200
    account.refresh_from_db()
    assert account.balance == 1000 and PointsTransaction.objects.filter(account=account).count() == 1
    program.staff_adjustment_limit = 200
    program.save()
    assert adjust(client, account, 201).status_code == 200
    assert Account.objects.get(pk=account.pk).balance == 1000


def test_an_administrator_adjusts_beyond_the_limit(client, account):
    client.force_login(staff_in(roles.ADMINISTRATOR))
    assert adjust(client, account, 5000).status_code == 302
    account.refresh_from_db()
    assert account.balance == 5000


def test_partner_adjustments_are_not_bound_by_the_staff_limit(api, member, program):
    response = api.post(
        f"/api/v1/members/{member.member_no}/points/adjustments/",
        {"points": 5000, "reason": "migration", "adjustment_id": "A-1"},
        format="json",
    )
    assert response.status_code == 201, response.content


def test_merge_and_duplicates_pages_mask_contacts_without_the_permission(client, member):
    member.birthday = dt.date(1990, 5, 1)
    member.save(update_fields=["birthday"])
    twin = MemberFactory(name="张伟", phone="+8613900139000", email="zw@example.com", birthday=dt.date(1990, 5, 1))
    user = User.objects.create_user("merger", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_member", "change_member"]))

    def pages():
        client.force_login(User.objects.get(pk=user.pk))
        merge = client.get(reverse("admin:members_member_merge", args=[member.pk, twin.pk]))
        duplicates = client.get(reverse("admin:members_member_duplicates"))
        assert len(duplicates.context["rows"]) == 1
        return merge.content.decode() + duplicates.content.decode()

    masked = pages()
    assert masked.count("138****8000") == 2 and masked.count("139****9000") == 2 and "z***@example.com" in masked
    assert "13800138000" not in masked and "13900139000" not in masked and "zw@example.com" not in masked
    user.user_permissions.add(Permission.objects.get(codename="view_personal_data"))
    full = pages()
    assert full.count("+8613800138000") == 2 and full.count("zw@example.com") == 2
