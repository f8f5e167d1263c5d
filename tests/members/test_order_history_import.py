"""Order history from a previous system, loaded in the admin through django-import-export with its preview."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import Order
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:members_order_import"
HEADERS_ZH = "渠道,订单号,会员编号,金额,下单时间,门店\n"


@pytest.fixture
def people(channel):
    return {
        "zhang": MemberFactory(name="张伟", phone="+8613800138000", email="zhang.wei@example.com"),
        "li": MemberFactory(name="李娜", phone="+8613900139000", email="li.na@example.com"),
    }


def preview(client, text, *, encoding="utf-8", name="history.csv", format_index=0):
    upload = SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")
    return client.post(reverse(IMPORT_URL), {"format": str(format_index), "resource": "0", "import_file": upload})


def confirm(client, response):
    form = response.context["confirm_form"]
    data = {name: form.initial[name] for name in form.initial}
    return client.post(reverse("admin:members_order_process_import"), data)


def row_types(response):
    return [row.import_type for row in response.context["result"].rows]


def test_preview_shows_each_row_and_writes_nothing(admin_client, channel, people):
    member_no = people["li"].member_no
    text = HEADERS_ZH + (
        f'{channel.code},H-1,138 0013 8000,"¥1,280.50",2024-03-08 14:20:00,上海南京西路店\n'
        f"{channel.name},H-2,{member_no},88,2024/03/09,\n"
    )
    response = preview(admin_client, text, encoding="gb18030")
    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors() and not result.has_validation_errors(), [r.error for r in result.invalid_rows]
    assert row_types(response) == ["new", "new"]
    assert Order.objects.count() == 0  # a preview only
    assert "confirm_form" in response.context


def test_confirmed_history_is_recorded_without_points_and_a_second_load_changes_nothing(
    admin_client, program, channel, people
):
    from loyalty.models import PointsTransaction

    text = (
        "channel,order_id,member,amount,occurred_at,store\n"
        f"{channel.code},H-10,zhang.wei@example.com,1280.50,2024-03-08 14:20:00,SH-01\n"
        f"{channel.code},H-11,+86 139-0013-9000,99,2024-03-09 09:00:00,\n"
    )
    response = confirm(admin_client, preview(admin_client, text))
    assert response.status_code == 302
    orders = {order.order_id: order for order in Order.objects.all()}
    assert set(orders) == {"H-10", "H-11"}
    assert orders["H-10"].member == people["zhang"] and orders["H-10"].amount == Decimal("1280.50")
    assert orders["H-10"].store == "SH-01" and orders["H-10"].currency == "CNY"
    assert orders["H-10"].occurred_at == dt.datetime(2024, 3, 8, 6, 20, tzinfo=dt.UTC)  # Asia/Shanghai
    assert not PointsTransaction.objects.filter(order__in=orders.values()).exists()  # history earns no points

    again = preview(admin_client, text)
    assert row_types(again) == ["skip", "skip"]  # unchanged
    assert Order.objects.count() == 2


def test_bad_rows_are_refused_with_their_reasons_and_nothing_is_written(admin_client, channel, people):
    admin_client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    Order.objects.create(
        channel=channel,
        order_id="H-20",
        member=people["zhang"],
        amount=Decimal("50.00"),
        occurred_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    text = (
        "channel,order_id,member,amount,occurred_at\n"
        f"{channel.code},H-20,13800138000,60,2024-01-01 08:00:00\n"  # recorded already with another amount
        f"{channel.code},H-21,13700000000,10,2024-01-02\n"  # nobody has this phone
        f"火星店,H-22,13800138000,10,2024-01-02\n"  # unknown channel
        f"{channel.code},H-23,13800138000,十块,2024-01-02\n"  # not an amount
        f"{channel.code},H-24,13800138000,-5,2024-01-02\n"  # negative
        f"{channel.code},H-25,13800138000,10,2024-01-02\n"  # a good row
    )
    response = preview(admin_client, text)
    result = response.context["result"]
    assert result.has_validation_errors()
    assert row_types(response) == ["invalid", "invalid", "invalid", "invalid", "invalid", "new"]
    messages = [str(row.error) for row in result.invalid_rows]
    assert "another amount" in messages[0]
    assert "No member" in messages[1]
    assert "Unknown channel" in messages[2]
    assert "Not a number" in messages[3]
    assert "cannot be negative" in messages[4]
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert list(Order.objects.values_list("order_id", flat=True)) == ["H-20"]


def test_reasons_are_in_chinese_for_chinese_operators(admin_client, channel):
    response = preview(admin_client, "渠道,订单号,会员编号,金额,下单时间\n火星店,H-30,13700000000,10,2024-01-02\n")
    errors = str(response.context["result"].invalid_rows[0].error)
    assert "未知渠道" in errors and "没有" in errors


def test_a_file_without_the_needed_columns_is_refused(admin_client, channel):
    response = preview(admin_client, "channel,order_id\nweb,H-1\n")
    result = response.context["result"]
    assert result.has_errors()
    assert "member" in str(result.base_errors[0].error)
    assert Order.objects.count() == 0


def test_xlsx_history_imports_like_csv(admin_client, channel, people):
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["渠道", "订单号", "手机号", "金额", "下单时间"])
    sheet.append([channel.code, "X-1", "13800138000", 120.5, dt.datetime(2024, 5, 1, 10, 30)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    upload = SimpleUploadedFile("history.xlsx", buffer.getvalue())
    response = admin_client.post(reverse(IMPORT_URL), {"format": "1", "resource": "0", "import_file": upload})
    assert row_types(response) == ["new"]
    confirm(admin_client, response)
    assert Order.objects.get(order_id="X-1").amount == Decimal("120.50")


def test_only_staff_allowed_to_import_orders_may_import(client, django_user_model, channel):
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-2026", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_order", "add_order"]))
    client.force_login(user)
    assert client.get(reverse(IMPORT_URL)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="import_order"))
    assert client.get(reverse(IMPORT_URL)).status_code == 200


def test_import_orders_command_loads_history_or_nothing(tmp_path, channel, people):
    import io
    import json

    from django.core.management import call_command

    good = tmp_path / "history.csv"
    good.write_bytes((HEADERS_ZH + f"{channel.code},C-1,13800138000,100,2024-01-02 10:00:00,\n").encode("gb18030"))
    out = io.StringIO()
    call_command("import_orders", str(good), "--dry-run", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1]) == {"new": 1, "unchanged": 0, "errors": 0}
    assert not Order.objects.exists()
    call_command("import_orders", str(good), stdout=out)
    assert Order.objects.get(order_id="C-1").member == people["zhang"]

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "channel,order_id,member,amount,occurred_at\n"
        f"{channel.code},C-2,13800138000,100,2024-01-02\n"
        f"{channel.code},C-3,nobody@example.com,100,2024-01-02\n"
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_orders", str(bad), "--language", "en", stdout=out, stderr=err)
    assert exit_info.value.code == 1
    assert json.loads(out.getvalue().splitlines()[-1])["errors"] == 1
    assert "row 3: member: No member" in err.getvalue()
    assert not Order.objects.filter(order_id__in=["C-2", "C-3"]).exists()  # nothing, not the good row either


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_the_admin_hands_a_file_above_its_preview_size_to_a_background_job(admin_client, channel, people, monkeypatch):
    from members.importing.admin import OrderHistoryImportMixin
    from members.models import ImportJob

    monkeypatch.setattr(OrderHistoryImportMixin, "preview_rows", 2)
    admin_client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    text = "channel,order_id,member,amount,occurred_at\n" + "".join(
        f"{channel.code},CAP-{index},13800138000,10,2024-01-02\n" for index in range(3)
    )
    response = preview(admin_client, text)
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:members_order_import_job", args=[job.pk])
    assert (job.kind, job.dry_run, job.status, job.progress) == ("orders", True, "done", 100)
    assert job.counts == {"new": 3, "unchanged": 0, "errors": 0}
    assert not Order.objects.exists()  # checked, not written
    page = admin_client.get(response["Location"]).content.decode()
    assert "CAP-0" in page and "Import now" in page

    confirmed = admin_client.post(response["Location"])
    job = ImportJob.objects.latest("pk")
    assert confirmed["Location"] == reverse("admin:members_order_import_job", args=[job.pk])
    assert (job.dry_run, job.status, job.counts) == (False, "done", {"new": 3, "unchanged": 0, "errors": 0})
    assert sorted(Order.objects.values_list("order_id", flat=True)) == ["CAP-0", "CAP-1", "CAP-2"]
