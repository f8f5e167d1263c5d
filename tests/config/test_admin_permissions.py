"""A staff user who may only view cannot change anything through the admin: every action and every custom admin
page, listed from the admin's own registry (so a new one is covered without touching this file), is refused and
leaves every table as it was."""

from decimal import Decimal

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from loyalty import rewards
from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import CouponTemplate
from members import services as member_services
from members.importing.resources import EXPORT_COLUMNS
from members.models import ImportJob
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

STANDARD_VIEWS = {"changelist", "add", "history", "delete", "change"}
STANDARD_SITE_VIEWS = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
}
# URL parameters that name another model than the admin's own.
PARAMETER_MODELS = {"job_id": ImportJob}


def _post_data():
    """What a form of any of the admin's tools would take: enough for each to act if it let the user through."""
    csv = "name,phone,email\n张三,13900139000,zhang.san@example.com\n".encode()
    return {
        "apply": "1",
        "post": "yes",
        "reason": "test",
        "tag": "VIP",
        "carrier": "SF",
        "tracking_no": "SF1",
        "points": "100",
        "count": "3",
        "note": "n",
        "text": "a note",
        "quantity": "1",
        "format": "0",
        "resource": "0",
        "file": SimpleUploadedFile("members.csv", csv, content_type="text/csv"),
        "import_file": SimpleUploadedFile("orders.csv", csv, content_type="text/csv"),
    }


@pytest.fixture
def world(channel, program, member, admin_user):
    """At least one row of every model the admin lists, so that each action has something to act on."""
    other = MemberFactory(name="李四", phone="+8613900139001", email="li.si@example.com")
    points_adjust(account=account_get_or_create(member=member, program=program), points=10000, reason="test")
    rewards.reward_redeem(
        channel=channel,
        member=member,
        reward_code="MUG",
        quantity=1,
        redemption_id="R-1",
        shipping={"name": "张伟", "phone": "13800138000", "address": "上海市静安区南京西路 1601 号"},
    )
    rewards.reward_redeem(channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id="R-2")
    rewards.coupons_issue_batch(template=CouponTemplate.objects.get(program=program, code="cny10"), count=2)
    member_services.api_key_create(channel=channel, scopes=["members:read"])
    member_services.members_tag(
        member_ids=[member.pk], tag=member_services.tag_get_or_create(name="VIP"), actor=admin_user
    )
    member_services.member_note_add(member=member, text="called about a parcel", actor=admin_user)
    member_services.order_record(
        channel=channel, order_id="O-1", member=other, amount=Decimal("100.00"), occurred_at=timezone.now()
    )
    job = ImportJob(original_name="members.csv", status=ImportJob.Status.DONE, counts={"new": 1})
    job.file.save("members.csv", ContentFile(b"name,phone\n"), save=False)
    job.error_file.save("rejected.csv", ContentFile(b"name,reason\n"), save=False)
    job.save()
    interval = IntervalSchedule.objects.create(every=1, period="days")
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=31.2, longitude=121.5)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    PeriodicTask.objects.create(name="daily", task="loyalty.tasks.run_daily_jobs", interval=interval, enabled=True)
    AccessAttempt.objects.create(username="x", ip_address="10.0.0.1", failures_since_start=1, user_agent="t")
    AccessLog.objects.create(username="x", ip_address="10.0.0.1", user_agent="t")
    AccessFailureLog.objects.create(username="x", ip_address="10.0.0.1", user_agent="t", locked_out=False)
    Group.objects.get_or_create(name="group")
    return {"other": other}


@pytest.fixture
def viewer(client, world):
    user = User.objects.create_user("viewer", password="pw-viewer-2026", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return user


def snapshot():
    """Every row of every table the product and its libraries keep (sessions aside: signing in writes one)."""
    state = {}
    for model in apps.get_models():
        if model is Session or model._meta.proxy or not model._meta.managed:
            continue
        state[model._meta.label] = list(model.objects.order_by("pk").values())
    return state


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_the_registry_has_what_this_test_walks(admin_user, world):
    # A guard for the test itself: the walk below covers real actions and pages, not an empty admin.
    request = _request(admin_user)
    actions = {name for model_admin in admin.site._registry.values() for name in model_admin.get_actions(request)}
    assert {"revoke_keys", "freeze", "add_tag", "cancel", "mark_delivered", "export_csv", "run_tasks"} <= actions
    names = {
        pattern.name
        for model_admin in admin.site._registry.values()
        for pattern in model_admin.get_urls()
        if isinstance(pattern, URLPattern)
    }
    assert {
        "members_member_import",
        "members_member_export",
        "members_member_merge",
        "members_member_duplicates",
        "members_order_import",
        "loyalty_fulfilment_ship",
        "loyalty_couponbatch_csv",
        "loyalty_earningrule_preview",
        "loyalty_account_adjust",
    } <= names


def test_a_view_only_user_is_offered_no_action(viewer):
    request = _request(viewer)
    offered = {
        model._meta.label: sorted(model_admin.get_actions(request))
        for model, model_admin in admin.site._registry.items()
        if model_admin.get_actions(request)
    }
    assert offered == {}


def test_every_action_posted_by_a_view_only_user_is_refused_and_changes_nothing(client, viewer, admin_user):
    every_action = _request(admin_user)
    before = snapshot()
    tried = 0
    for model, model_admin in admin.site._registry.items():
        if not model._meta.managed:
            continue  # no table, no rows, no actions (the analytics dashboard's entry)
        selected = list(model.objects.order_by("pk").values_list("pk", flat=True)[:2])
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for name in model_admin.get_actions(every_action):
            response = client.post(
                changelist, {**_post_data(), "action": name, "index": "0", "_selected_action": selected}
            )
            tried += 1
            # Refused: forbidden, or sent back to the list with "No action selected.", or (when the user is
            # offered no action at all) the list page itself, not an action's own page or file.
            refused = (
                response.status_code == 403
                or (
                    response.status_code == 302
                    and [str(message) for message in get_messages(response.wsgi_request)] == ["No action selected."]
                )
                or (response.status_code == 200 and "cl" in response.context and "action_form" in response.context)
            )
            assert refused, f"{model._meta.label}: action {name} answered {response.status_code}"
            assert "Content-Disposition" not in response, f"{model._meta.label}: action {name} gave a file"
    assert tried >= 20
    assert snapshot() == before


def _custom_patterns():
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        standard = {f"{info}_{view}" for view in STANDARD_VIEWS}
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLPattern) and pattern.name is not None and pattern.name not in standard:
                yield model, pattern
            elif isinstance(pattern, URLPattern) and pattern.name is None and pattern.pattern.converters:
                # Django's own redirect of <object_id>/ to its change page has no name; anything else must have one.
                assert str(pattern.pattern) == "<path:object_id>/", f"{info}: a custom page without a name"


def _kwargs(model, pattern):
    kwargs = {}
    used = {}
    for parameter in pattern.pattern.converters:
        target = PARAMETER_MODELS.get(parameter, model)
        # A model without a table (the analytics dashboard's entry) has no rows to point at.
        pks = list(target.objects.order_by("pk").values_list("pk", flat=True)[:2]) if target._meta.managed else []
        position = used.get(target, 0)
        used[target] = position + 1
        kwargs[parameter] = pks[min(position, len(pks) - 1)] if pks else 1
    return kwargs


def test_every_custom_admin_page_refuses_a_view_only_user_and_changes_nothing(client, viewer):
    before = snapshot()
    tried = []
    for model, pattern in _custom_patterns():
        url = reverse(f"admin:{pattern.name}", kwargs=_kwargs(model, pattern))
        # A page that only takes POST may answer a GET with 405; the POST must be forbidden.
        got = client.get(url)
        assert got.status_code in (403, 405), f"GET {url} ({pattern.name}): {got.status_code}"
        posted = client.post(url, _post_data())
        assert posted.status_code == 403, f"POST {url} ({pattern.name}): {posted.status_code}"
        tried.append(pattern.name)
    assert len(tried) >= 12
    site_patterns = [
        pattern
        for pattern in admin.site.get_urls()
        # (the unnamed one is Django's catch-all that answers 404 for unknown admin paths)
        if isinstance(pattern, URLPattern) and pattern.name is not None and pattern.name not in STANDARD_SITE_VIEWS
    ]
    for pattern in site_patterns:
        url = reverse(f"admin:{pattern.name}", kwargs=dict.fromkeys(pattern.pattern.converters, 1))
        assert client.get(url).status_code == 403, url
    assert snapshot() == before


def test_a_view_only_user_downloads_no_export(client, viewer, world, program):
    refused = [
        client.post(reverse("admin:members_member_export"), {"format": "0", "resource": "0"}),
        client.get(reverse("admin:loyalty_couponbatch_csv", args=[1])),
        client.get(reverse("admin:members_member_import_rejected", args=[ImportJob.objects.get().pk])),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]


def test_each_export_needs_its_own_permission_beyond_viewing(client, world, program):
    user = User.objects.create_user("exporter", password="pw-export-2026", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["export_member", "export_couponbatch", "export_fulfilment"])
    )
    client.force_login(user)
    fields = {f"memberexportresource_{key}": "on" for key, _attribute, _zh in EXPORT_COLUMNS}
    members = client.post(reverse("admin:members_member_export"), {"format": "0", "resource": "0", **fields})
    assert members.status_code == 200 and members["Content-Type"].startswith("text/csv")
    batch = rewards.coupons_issue_batch(template=CouponTemplate.objects.get(program=program, code="cny10"), count=1)
    codes = client.get(reverse("admin:loyalty_couponbatch_csv", args=[batch.pk]))
    assert codes.status_code == 200
    fulfilment = apps.get_model("loyalty", "Fulfilment").objects.get()
    gifts = client.post(
        reverse("admin:loyalty_fulfilment_changelist"), {"action": "export_csv", "_selected_action": [fulfilment.pk]}
    )
    assert gifts.status_code == 200 and gifts["Content-Disposition"] == 'attachment; filename="gifts-to-ship.csv"'
