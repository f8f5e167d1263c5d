"""Import and export in the admin: the preview shows every row's fate, nothing is written until confirmed."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from members.models import ImportJob, Member
from tests.factories import MemberFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_tasks")]

DATA = Path(__file__).resolve().parents[1] / "data"
ANSWERS = json.loads((DATA / "members_sample_answers.json").read_text())


@pytest.fixture
def channels(db):
    from members.demo import demo_channels

    return demo_channels()


def upload(client, name, skip_errors=False):
    content = (DATA / name).read_bytes()
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    if skip_errors:
        data["skip_errors"] = "on"
    return client.post(reverse("admin:members_member_import"), data)


@pytest.mark.parametrize("sample", ["members_sample_utf8bom.csv", "members_sample_gb18030.csv"])
def test_preview_marks_every_row_and_writes_nothing(admin_client, channels, sample):
    response = upload(admin_client, sample)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == "done" and job.dry_run
    counts = ANSWERS["counts"]
    assert job.counts == {
        "new": counts["new"],
        "updated": 0,
        "unchanged": counts["duplicate"],
        "errors": counts["error"],
    }
    assert Member.objects.count() == 0
    page = admin_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and 'id="import-rows"' in html
    assert "Import now" not in html and "立即导入" not in html  # errors and no "skip" chosen: no confirm button
    errors = [row for row in job.preview if row["status"] == "error"]
    assert len(errors) == counts["error"]
    assert {row["row"] for row in errors} == {a["row"] for a in ANSWERS["answers"] if a["expect"] == "error"}


def test_skip_errors_then_confirm_imports_the_good_rows_and_offers_the_rejected_file(admin_client, channels):
    upload(admin_client, "members_sample_utf8bom.csv", skip_errors=True)
    preview = ImportJob.objects.get()
    page = admin_client.get(reverse("admin:members_member_import_job", args=[preview.pk]))
    assert b'type="submit"' in page.content
    confirm = admin_client.post(reverse("admin:members_member_import_job", args=[preview.pk]))
    job = ImportJob.objects.exclude(pk=preview.pk).get()
    assert confirm["Location"].endswith(f"/import/{job.pk}/")
    assert job.status == "done" and not job.dry_run
    assert Member.objects.count() == ANSWERS["counts"]["new"]
    rejected = admin_client.get(reverse("admin:members_member_import_rejected", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(rejected.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 1 + ANSWERS["counts"]["error"]
    assert rows[0][-2:] in (["row", "reason"], ["行号", "原因"])


def test_a_file_that_cannot_be_read_fails_with_a_message(admin_client, channels):
    data = {"file": SimpleUploadedFile("x.csv", b"foo,bar\n1,2\n", content_type="text/csv")}
    admin_client.post(reverse("admin:members_member_import"), data)
    job = ImportJob.objects.get()
    assert job.status == "failed" and "name" in job.message
    assert Member.objects.count() == 0


def test_import_page_and_job_list_render(admin_client, channels):
    assert admin_client.get(reverse("admin:members_member_import")).status_code == 200
    assert admin_client.get(reverse("admin:members_importjob_changelist")).status_code == 200


@pytest.mark.parametrize(("resource", "header"), [("0", "member_no"), ("1", "会员编号")])
def test_export_of_the_filtered_list_as_csv_with_either_headers(admin_client, channels, resource, header):
    MemberFactory(name="导出一", phone="+8613800138000", email="a@example.com", status="frozen")
    MemberFactory(name="导出二", phone="+8613900139000", email="b@example.com")
    from members.importing.resources import EXPORT_COLUMNS

    prefix = "memberexportresourcezh" if resource == "1" else "memberexportresource"
    url = reverse("admin:members_member_export") + "?status__exact=frozen"
    fields = {f"{prefix}_{key}": "on" for key, _english, _zh in EXPORT_COLUMNS}
    response = admin_client.post(url, {"format": "0", "resource": resource, **fields})
    assert response.status_code == 200, response.content[:500]
    text = response.content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].split(",")[0] == header
    assert len(lines) == 2 and "+8613800138000" in lines[1]  # only the filtered (frozen) member


def test_the_preview_says_how_many_rows_it_shows_and_the_status_once(admin_client, channels, monkeypatch):
    from members.importing import services

    monkeypatch.setattr(services, "PREVIEW_ROWS_PER_STATUS", 3)
    lines = ["姓名,手机号"] + [f"会员{index},1390000{index:04d}" for index in range(8)] + ["坏,123"]
    data = {
        "file": SimpleUploadedFile("list.csv", "\n".join(lines).encode(), content_type="text/csv"),
        "skip_errors": "on",
    }
    response = admin_client.post(reverse("admin:members_member_import"), data)
    html = admin_client.get(response["Location"]).content.decode()
    assert "显示 9 行中的 4 行" in html
    status = html.split('id="import-status"')[1].split("</p>")[0]
    assert status.count("仅预览") == 1


def export(client, url, *, resource, file_format):
    from members.importing.resources import EXPORT_COLUMNS

    prefix = "memberexportresourcezh" if resource == "1" else "memberexportresource"
    fields = {f"{prefix}_{key}": "on" for key, _english, _zh in EXPORT_COLUMNS}
    response = client.post(url, {"format": file_format, "resource": resource, **fields})
    assert response.status_code == 200, response.content[:500]
    return response


@pytest.fixture
def exported_member(channels):
    import datetime as dt
    from decimal import Decimal

    tmall = next(channel for channel in channels if channel.code == "tmall")
    return MemberFactory(
        name="王芳",
        phone="+8613800138000",
        email="wang.fang@example.com",
        gender="female",
        birthday=dt.date(1990, 5, 17),
        city="杭州",
        join_channel=tmall,
        imported_spend=Decimal("1234.50"),
        joined_at=dt.datetime(2024, 3, 1, 17, 30, tzinfo=dt.UTC),  # 2024-03-02 01:30 in Shanghai
    )


CHINESE_HEADER = [
    "会员编号",
    "姓名",
    "手机号",
    "邮箱",
    "性别",
    "生日",
    "城市",
    "注册渠道",
    "状态",
    "注册时间",
    "累计消费",
]


@pytest.mark.parametrize(("file_format", "encoding"), [("0", "utf-8"), ("1", "gb18030")])
def test_export_with_chinese_headers_reads_back_in_chinese_in_the_chosen_encoding(
    admin_client, exported_member, file_format, encoding
):
    member = exported_member
    response = export(admin_client, reverse("admin:members_member_export"), resource="1", file_format=file_format)
    content = response.content
    assert content.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8")  # the BOM Excel needs, for UTF-8 only
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig" if encoding == "utf-8" else encoding))))
    assert rows == [
        CHINESE_HEADER,
        [
            member.member_no,
            "王芳",
            "+8613800138000",
            "wang.fang@example.com",
            "女",
            "1990-05-17",
            "杭州",
            "天猫旗舰店",
            "正常",
            "2024-03-02 01:30:00",
            "1234.50",
        ],
    ]


def test_export_with_english_headers_has_english_values(admin_client, exported_member):
    response = export(admin_client, reverse("admin:members_member_export"), resource="0", file_format="0")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "member_no",
        "name",
        "phone",
        "email",
        "gender",
        "birthday",
        "city",
        "channel",
        "status",
        "joined_at",
        "total_spend",
    ]
    assert rows[1][4] == "female" and rows[1][8] == "active" and rows[1][9] == "2024-03-02 01:30:00"


def test_xlsx_export_has_numbers_as_numbers_and_dates_as_dates(admin_client, exported_member):
    import datetime as dt
    from decimal import Decimal

    import openpyxl

    member = exported_member
    response = export(admin_client, reverse("admin:members_member_export"), resource="1", file_format="2")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header, row = [cell.value for cell in sheet[1]], [cell.value for cell in sheet[2]]
    assert header == CHINESE_HEADER
    assert row[4] == "女" and row[8] == "正常"
    assert Decimal(str(row[10])) == Decimal("1234.50") and isinstance(row[10], float | int)
    assert row[9] == dt.datetime(2024, 3, 2, 1, 30) and row[5] == dt.datetime(1990, 5, 17)
    assert row[0] == member.member_no  # a member number stays text
