"""The member import: the real sample files import exactly as their answer sheets say, in both encodings."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from members.errors import ImportFailed
from members.importing.services import describe_errors, members_import
from members.models import ChannelIdentity, Member, MemberHistory, MemberTag
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[1] / "data"
ANSWERS = json.loads((DATA / "members_sample_answers.json").read_text())
SAMPLES = ["members_sample_utf8bom.csv", "members_sample_gb18030.csv"]


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in English; the product's default language is Chinese."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def channels(db):
    from members.demo import demo_channels

    return demo_channels()


def run(path, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_members", str(path), *args, "--language", "en", stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_file_imports_as_its_answer_sheet_says(channels, sample):
    result = members_import(data=(DATA / sample).read_bytes(), skip_errors=True)
    expected = ANSWERS["counts"]
    assert result.counts == {
        "new": expected["new"],
        "updated": 0,
        "unchanged": expected["duplicate"],
        "errors": expected["error"],
    }
    by_row = {outcome.row.number: outcome for outcome in result.outcomes}
    for answer in ANSWERS["answers"]:
        outcome = by_row[answer["row"]]
        if answer["expect"] == "error":
            assert outcome.status == "error", answer
        else:
            assert outcome.status in ({"new"} if answer["expect"] == "new" else {"unchanged", "update"}), answer
            assert Member.objects.get(member_no=outcome.member_no).phone == answer["phone"]
    assert Member.objects.count() == expected["new"]
    assert (
        Member.objects.filter(phone__in=[a["phone"] for a in ANSWERS["answers"] if a["expect"] != "error"]).count()
        == expected["new"]
    )


WHY_TO_COLUMN = {
    "impossible date": "birthday",
    "phone too short": "phone",
    "not a number": "total_spend",
    "bad email": "email",
    "name missing": "name",
    "birthday in the future": "birthday",
}


def test_every_faulty_row_is_reported_with_its_column(channels):
    result = members_import(data=(DATA / SAMPLES[0]).read_bytes(), skip_errors=True)
    by_row = {outcome.row.number: outcome for outcome in result.outcomes}
    for answer in ANSWERS["answers"]:
        if answer["expect"] == "error":
            columns = [column for column, _message in by_row[answer["row"]].row.errors]
            assert WHY_TO_COLUMN[answer["why"]] in columns, (answer, columns)


def test_both_encodings_give_the_same_members(channels):
    members_import(data=(DATA / SAMPLES[0]).read_bytes(), skip_errors=True)
    again = members_import(data=(DATA / SAMPLES[1]).read_bytes(), skip_errors=True)
    assert again.counts["new"] == 0 and again.counts["updated"] == 0
    assert again.counts["unchanged"] == ANSWERS["counts"]["new"] + ANSWERS["counts"]["duplicate"]


def test_command_default_imports_nothing_when_rows_fail(channels):
    code, counts, err = run(DATA / SAMPLES[0])
    assert code == 1
    assert counts["errors"] == ANSWERS["counts"]["error"]
    assert Member.objects.count() == 0
    assert "row 25: birthday" in err


def test_command_skip_errors_imports_the_good_rows_and_writes_the_rejected_ones(channels, tmp_path):
    errors_file = tmp_path / "rejected.csv"
    code, counts, _err = run(DATA / SAMPLES[1], "--skip-errors", "--errors-out", str(errors_file))
    assert code == 0
    assert counts == {"new": 1861, "updated": 0, "unchanged": 48, "errors": 91}
    lines = errors_file.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "姓名,手机号,邮箱,性别,生日,城市,注册渠道,累计消费,注册时间,row,reason"
    assert len(lines) == 1 + 91
    assert lines[1].split(",")[-2:] == ["25", "生日: This date does not exist."]  # the file's own header
    # fix nothing and import the rejected file again: still rejected, nothing new
    code, counts, _err = run(errors_file, "--skip-errors")
    assert counts["new"] == 0 and counts["errors"] == 91


def test_dry_run_writes_nothing_but_counts_everything(channels):
    _code, counts, _err = run(DATA / SAMPLES[0], "--dry-run", "--skip-errors")
    assert counts == {"new": 1861, "updated": 0, "unchanged": 48, "errors": 91}
    assert Member.objects.count() == 0 and MemberHistory.objects.count() == 0


def test_reimporting_the_same_file_changes_nothing(channels):
    run(DATA / SAMPLES[0], "--skip-errors")
    before = MemberHistory.objects.count()
    _code, counts, _err = run(DATA / SAMPLES[0], "--skip-errors")
    assert counts == {"new": 0, "updated": 0, "unchanged": 1909, "errors": 91}
    assert MemberHistory.objects.count() == before


def csv_bytes(text):
    return text.encode("utf-8")


def test_upsert_matches_by_phone_then_email_and_blank_cells_erase_nothing(channels):
    by_phone = MemberFactory(name="老王", phone="+8613800138000", email="old@example.com", city="上海")
    by_email = MemberFactory(name="小李", phone=None, email="li@example.com")
    data = csv_bytes(
        "name,phone,email,city,total_spend\n王大伟,138-0013-8000,,,88.00\n李小龙,13900139000,LI@example.com,杭州,\n"
    )
    result = members_import(data=data)
    assert [outcome.status for outcome in result.outcomes] == ["update", "update"]
    by_phone.refresh_from_db()
    by_email.refresh_from_db()
    assert (by_phone.name, by_phone.email, by_phone.city, str(by_phone.imported_spend)) == (
        "王大伟",
        "old@example.com",
        "上海",
        "88.00",
    )
    assert (by_email.phone, by_email.city) == ("+8613900139000", "杭州")
    assert Member.objects.count() == 2


def test_a_row_matching_two_members_is_an_error(channels):
    MemberFactory(phone="+8613800138000", email="a@example.com")
    MemberFactory(phone="+8613900139000", email="b@example.com")
    result = members_import(data=csv_bytes("name,phone,email\n某人,13800138000,b@example.com\n"), skip_errors=True)
    assert result.outcomes[0].status == "error"
    assert "merge" in result.outcomes[0].row.errors[0][1]


def test_identity_matching_and_tags(channels):
    data = csv_bytes("name,phone,channel,external_id,tags\n张三,13700137000,tmall,tb-001,VIP;新客\n")
    members_import(data=data)
    member = Member.objects.get(phone="+8613700137000")
    assert ChannelIdentity.objects.get(member=member).external_id == "tb-001"
    assert sorted(MemberTag.objects.filter(member=member).values_list("tag__name", flat=True)) == ["VIP", "新客"]
    # the same identity with a new phone finds the same member
    again = members_import(data=csv_bytes("name,phone,channel,external_id\n张三,,tmall,tb-001\n"))
    assert again.outcomes[0].status == "unchanged" and Member.objects.count() == 1


def test_unknown_channel_is_a_row_error(channels):
    result = members_import(data=csv_bytes("name,phone,channel\n某人,13700137000,火星店\n"), skip_errors=True)
    assert result.outcomes[0].row.errors[0][0] == "channel"


def test_opening_balances_from_the_import(channels, program):
    from loyalty.models import Account

    data = csv_bytes("name,phone,points_balance,tier\n积分迁移,13700137000,1500,gold\n坏等级,13700137001,10,platinum\n")
    refused = members_import(data=data)
    assert refused.counts == {"new": 1, "updated": 0, "unchanged": 0, "errors": 1}
    assert Member.objects.count() == 0
    members_import(data=csv_bytes("name,phone,points_balance,tier\n积分迁移,13700137000,1500,gold\n"))
    account = Account.objects.get(member__phone="+8613700137000")
    assert (account.balance, account.tier.code) == (1500, "gold")


def test_a_tier_given_by_its_name_is_matched_and_an_unknown_one_fails_only_its_row(channels, program):
    from loyalty.models import Account

    data = csv_bytes(
        "姓名,手机号,积分,会员等级\n银卡,13700137000,100,银卡会员\n英文,13700137001,,Gold\n铂金,13700137002,10,铂金会员\n"
    )
    result = members_import(data=data, skip_errors=True)
    assert result.counts == {"new": 2, "updated": 0, "unchanged": 0, "errors": 1}
    assert describe_errors(result.errors[0].row, "en", result.labels) == (
        "会员等级: Unknown tier 铂金会员. This programme has: 普通会员 (basic), 银卡会员 (silver), 金卡会员 (gold), "
        "钻石会员 (diamond)."
    )
    assert dict(Account.objects.values_list("member__name", "tier__code")) == {"银卡": "silver", "英文": "gold"}
    assert not Member.objects.filter(name="铂金").exists()


def test_rows_that_only_add_points_a_tier_or_tags_are_updates(channels, program):
    members_import(data=csv_bytes("name,phone\n甲,13700137000\n乙,13700137001\n丙,13700137002\n"))
    data = csv_bytes(
        "name,phone,points_balance,tier,tags\n甲,13700137000,500,,\n乙,13700137001,,silver,\n丙,13700137002,,,VIP\n"
    )
    preview = members_import(data=data, dry_run=True)
    assert [outcome.status for outcome in preview.outcomes] == ["update", "update", "update"]
    assert [list(outcome.changes) for outcome in preview.outcomes] == [["points_balance"], ["tier"], ["tags"]]
    assert members_import(data=data).counts == {"new": 0, "updated": 3, "unchanged": 0, "errors": 0}
    again = members_import(data=data, dry_run=True)
    assert [outcome.status for outcome in again.outcomes] == ["unchanged", "unchanged", "unchanged"]


@pytest.mark.parametrize(
    ("header", "language", "expected"),
    [
        ("name,mobile,birth_date,spend", "en", ["mobile", "birth_date", "spend"]),
        ("姓名,手机,出生日期,累计消费金额", "zh-hans", ["手机", "出生日期", "累计消费金额"]),
    ],
)
def test_messages_name_the_columns_by_the_file_own_headers(channels, header, language, expected):
    result = members_import(data=csv_bytes(f"{header}\n张三,12345,2999-01-01,lots\n"))
    message = describe_errors(result.errors[0].row, language, result.labels)
    phone, birthday, spend = expected
    assert message.startswith(f"{phone}: ") and f"; {birthday}: " in message and f"; {spend}: " in message
    assert "phone:" not in message and "birthday:" not in message and "total_spend:" not in message
    rejected = list(csv.reader(io.StringIO(result.errors_csv(language).decode("utf-8-sig"))))
    assert rejected[1][-1] == message


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"foo,bar\n1,2\n", "name column"), (b"name,city\nx,y\n", "phone")],
)
def test_unreadable_files_are_refused_with_a_reason(channels, data, message):
    with pytest.raises(ImportFailed) as raised:
        members_import(data=data)
    assert message in raised.value.message


def test_xlsx_files_import_like_csv(channels):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["姓名", "手机号", "邮箱", "生日"])
    sheet.append(["表格用户", "13600136000", "x@example.com", "1991/02/03"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = members_import(data=buffer.getvalue())
    assert result.counts["new"] == 1
    assert str(Member.objects.get().birthday) == "1991-02-03"


@pytest.mark.django_db
def test_a_job_that_breaks_unexpectedly_is_marked_failed_not_left_running():
    from members.importing.services import import_job_run
    from members.models import ImportJob

    job = ImportJob.objects.create(original_name="gone.csv", skip_errors=False)
    job.file.name = "imports/gone-from-storage.csv"  # the upload vanished from the storage
    job.save()
    with pytest.raises(FileNotFoundError):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.message and job.finished_at is not None


@pytest.mark.django_db
def test_a_member_written_meanwhile_by_someone_else_fails_the_import_cleanly(channels, monkeypatch):
    """Between matching and writing, another request takes a phone of the file: nothing is imported, and the
    operator is told to try again (not a server error)."""
    from members.importing import services

    match = services._match_existing

    def match_then_someone_else_writes(people):
        match(people)
        MemberFactory(name="抢先", phone="+8613700137001", email=None)

    monkeypatch.setattr(services, "_match_existing", match_then_someone_else_writes)
    before = Member.objects.count()
    data = csv_bytes("name,phone\n甲,13700137000\n乙,13700137001\n")
    with pytest.raises(ImportFailed, match="Try again"):
        members_import(data=data)
    assert Member.objects.count() == before + 1  # only the other request's member
    assert not Member.objects.filter(phone="+8613700137000").exists()
