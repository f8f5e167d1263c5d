"""API.md: Rewards, redemptions and coupons on the demo points mall (CNY10 for 1,000 points, min spend 50.00,
30 days; CNY50 for 4,500 points, silver and above; MUG for 3,000 points, stock 100, one per member)."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import Account, Coupon, PointsTransaction, Redemption, Reward
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def give(member, program, points):
    points_adjust(account=account_get_or_create(member=member, program=program), points=points, reason="test")


ADDRESS = {"name": "张伟", "phone": "13800138000", "address": "上海市静安区南京西路 1601 号"}


def redeem(api, member, reward, redemption_id="RD-1", quantity=1, shipping=None):
    body = {"redemption_id": redemption_id, "member_no": member.member_no, "reward_code": reward, "quantity": quantity}
    if reward == "MUG":
        body["shipping"] = shipping or ADDRESS
    return api.post("/api/v1/redemptions/", body, format="json")


def test_catalogue_with_availability_for_a_member(api, member, program):
    give(member, program, 3500)
    body = api.get("/api/v1/rewards/", {"member_no": member.member_no}).json()
    by_code = {reward["code"]: reward for reward in body["results"]}
    assert set(by_code) == {"CNY10", "CNY50", "MUG"}
    assert by_code["MUG"]["stock_left"] == 100 and by_code["CNY10"]["stock_left"] is None
    assert by_code["CNY10"]["available"] is True and by_code["CNY10"]["reason_unavailable"] is None
    assert by_code["CNY50"]["available"] is False and by_code["CNY50"]["min_tier"] == "silver"
    assert by_code["MUG"]["available"] is True
    plain = api.get("/api/v1/rewards/").json()["results"][0]
    assert "available" not in plain and plain["points_cost"] == 1000


def test_redeeming_a_coupon_spends_points_and_issues_it(api, member, program):
    give(member, program, 2500)
    response = redeem(api, member, "CNY10", quantity=2)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points_spent"] == 2000 and body["member"] == {"points": {"balance": 500}}
    assert len(body["coupons"]) == 2 and all(coupon["value"] == "10.00" for coupon in body["coupons"])
    code = body["coupons"][0]["code"]
    assert len(code) >= 10 and not set(code) & set("0O1IL")
    coupon = api.get(f"/api/v1/coupons/{code}/").json()
    assert coupon["status"] == "issued" and coupon["member_no"] == member.member_no and coupon["min_spend"] == "50.00"
    valid_until = dt.datetime.fromisoformat(coupon["valid_until"])
    assert abs((valid_until - timezone.now()) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
    listed = api.get(f"/api/v1/members/{member.member_no}/coupons/").json()
    assert listed["count"] == 2


def test_replay_answers_the_original_and_a_changed_payload_conflicts(api, member, program):
    give(member, program, 5000)
    first = redeem(api, member, "CNY10")
    replay = redeem(api, member, "CNY10")
    conflict = redeem(api, member, "CNY10", quantity=2)
    assert (first.status_code, replay.status_code, conflict.status_code) == (201, 200, 409)
    assert replay.json()["coupons"] == first.json()["coupons"]
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert Account.objects.get(member=member).balance == 4000


@pytest.mark.parametrize(
    ("setup", "reward", "code"),
    [
        ("poor", "CNY10", "insufficient_points"),
        ("rich", "CNY50", "reward_unavailable"),  # basic member, silver and above only
        ("rich_twice", "MUG", "limit_exceeded"),
        ("rich_no_stock", "MUG", "reward_unavailable"),
        ("rich_expired", "CNY10", "reward_unavailable"),
        ("frozen", "CNY10", "member_not_active"),
    ],
)
def test_every_refusal_deducts_nothing_and_takes_no_stock(api, member, program, setup, reward, code):
    give(member, program, 999 if setup == "poor" else 10000)
    if setup == "rich_twice":
        assert redeem(api, member, "MUG", redemption_id="RD-0").status_code == 201
    if setup == "rich_no_stock":
        Reward.objects.filter(code="MUG").update(stock=0)
    if setup == "rich_expired":
        Reward.objects.filter(code="CNY10").update(valid_until=timezone.now() - dt.timedelta(days=1))
    if setup == "frozen":
        member.status = "frozen"
        member.save()
    balance = Account.objects.get(member=member).balance
    stock = Reward.objects.get(code="MUG").stock
    response = redeem(api, member, reward)
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == code
    assert Account.objects.get(member=member).balance == balance
    assert Reward.objects.get(code="MUG").stock == stock
    assert not Redemption.objects.filter(redemption_id="RD-1").exists()


def test_a_gift_takes_the_recipient_and_its_address(api, member, program):
    give(member, program, 5000)
    response = redeem(api, member, "MUG")
    assert response.status_code == 201, response.content
    fulfilment = Redemption.objects.get(redemption_id="RD-1").fulfilment
    assert (fulfilment.status, fulfilment.recipient_name, fulfilment.recipient_phone, fulfilment.address) == (
        "to_ship",
        "张伟",
        "13800138000",
        "上海市静安区南京西路 1601 号",
    )


@pytest.mark.parametrize(
    ("shipping", "fields"),
    [
        (None, {"shipping.name", "shipping.phone", "shipping.address"}),
        ({"name": "张伟", "phone": "13800138000", "address": "  "}, {"shipping.address"}),
    ],
)
def test_a_gift_without_an_address_is_refused_and_changes_nothing(api, member, program, shipping, fields):
    give(member, program, 5000)
    body = {"redemption_id": "RD-1", "member_no": member.member_no, "reward_code": "MUG"}
    if shipping:
        body["shipping"] = shipping
    response = api.post("/api/v1/redemptions/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and set(error["fields"]) == fields
    assert Account.objects.get(member=member).balance == 5000
    assert Reward.objects.get(code="MUG").stock == 100
    assert not Redemption.objects.exists()


def test_the_api_schema_documents_the_shipping_address(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    shipping = schema["components"]["schemas"]["ShippingRequest"]
    assert set(shipping["required"]) == {"name", "phone", "address"}
    assert "shipping" in schema["components"]["schemas"]["RedemptionInputRequest"]["properties"]


def test_unknown_reward_is_404_and_bad_quantity_400(api, member, program):
    assert redeem(api, member, "NOPE").status_code == 404
    assert redeem(api, member, "CNY10", quantity=0).status_code == 400


def test_a_negative_balance_blocks_redemption(api, member, program):
    give(member, program, 5000)
    Account.objects.filter(member=member).update(balance=-10)
    assert redeem(api, member, "CNY10").json()["error"]["code"] == "insufficient_points"


def test_coupon_burn_once_with_min_spend(api, member, program):
    give(member, program, 1000)
    code = redeem(api, member, "CNY10").json()["coupons"][0]["code"]
    too_small = api.post(f"/api/v1/coupons/{code}/redeem/", {"order_id": "O-1", "amount": "49.99"}, format="json")
    assert too_small.status_code == 409 and too_small.json()["error"]["code"] == "coupon_not_valid"
    used = api.post(f"/api/v1/coupons/{code}/redeem/", {"order_id": "O-1", "amount": "50.00"}, format="json")
    assert used.status_code == 200 and used.json() == {"code": code, "status": "used"}
    again = api.post(f"/api/v1/coupons/{code}/redeem/", {}, format="json")
    assert again.json()["error"]["code"] == "coupon_not_valid"
    assert Coupon.objects.get(code=code).order_reference == "O-1"


def test_a_coupon_for_other_channels_is_refused_here(api, member, program):
    from loyalty.models import CouponTemplate

    give(member, program, 1000)
    code = redeem(api, member, "CNY10").json()["coupons"][0]["code"]
    CouponTemplate.objects.filter(code="cny10").update(channel_codes=["tmall"])
    response = api.post(f"/api/v1/coupons/{code}/redeem/", {"amount": "60.00"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "coupon_not_valid"
    assert Coupon.objects.get(code=code).status == "issued"


def test_expired_coupons_are_refused_and_marked_by_the_daily_job(api, member, program):
    from loyalty import jobs

    give(member, program, 1000)
    code = redeem(api, member, "CNY10").json()["coupons"][0]["code"]
    Coupon.objects.filter(code=code).update(valid_until=timezone.now() - dt.timedelta(days=1))
    assert api.post(f"/api/v1/coupons/{code}/redeem/", {}, format="json").status_code == 409
    jobs.jobs_run(program=program, as_of=timezone.localdate(), jobs=["expire"])
    assert Coupon.objects.get(code=code).status == "expired"


def test_coupon_endpoints_need_their_scopes(make_client, member, program):
    client = make_client(scopes=["members:read"])
    assert client.post("/api/v1/coupons/ABC/redeem/", {}, format="json").status_code == 403
    assert client.post("/api/v1/redemptions/", {}, format="json").status_code == 403


def test_catalogue_query_count_does_not_grow_with_the_catalogue(api, member, program):
    give(member, program, 100)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/rewards/", {"member_no": member.member_no}).status_code == 200
        return len(captured)

    queries()
    few = queries()
    template = Reward.objects.get(code="CNY10").coupon_template
    for index in range(20):
        Reward.objects.create(
            program=program,
            code=f"R{index}",
            name=f"r{index}",
            kind="coupon",
            points_cost=index,
            coupon_template=template,
            per_member_limit=2,
            limit_period="month",
        )
    assert queries() <= few + 1  # one more query for the monthly limits, whatever their number


def run_threads(count, work):
    barrier, results, lock = threading.Barrier(count), [], threading.Lock()

    def runner(index):
        barrier.wait()
        try:
            outcome = work(index)
        except Exception as error:  # the test inspects every outcome
            outcome = error
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=runner, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_never_overspend_points_or_stock(channel, program):
    from loyalty.rewards import reward_redeem
    from members.models import Member

    Reward.objects.filter(code="MUG").update(stock=3, per_member_limit=None)
    members = [MemberFactory() for _ in range(6)]
    for member in members:
        give(member, program, 3000)
    rich = MemberFactory()
    give(rich, program, 7000)  # enough for 2 of 5 attempts at 3,000

    def attempt(index):
        member = Member.objects.get(pk=(members + [rich] * 5)[index].pk)
        return reward_redeem(
            channel=channel,
            member=member,
            reward_code="MUG",
            quantity=1,
            redemption_id=f"C-{index}",
            shipping=ADDRESS,
        )

    results = run_threads(11, attempt)
    done = [result for result in results if isinstance(result, tuple)]
    assert len(done) == 3
    assert Reward.objects.get(code="MUG").stock == 0
    for account in Account.objects.all():
        assert account.balance >= 0
        total = PointsTransaction.objects.filter(account=account, status="available").aggregate(s=Sum("points"))["s"]
        assert total == account.balance


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_coupon_is_used_once_under_concurrent_burns(channel, program, member):
    from loyalty.rewards import coupon_redeem, reward_redeem

    give(member, program, 1000)
    redemption, _created = reward_redeem(
        channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id="R-1"
    )
    code = redemption.coupons.get().code
    results = run_threads(
        8, lambda index: coupon_redeem(channel=channel, code=code, order_id=f"O-{index}", amount=Decimal("60"))
    )
    assert sum(isinstance(result, Coupon) for result in results) == 1
    assert Coupon.objects.get(code=code).status == "used"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_redemption_have_one_effect(channel, program, member):
    from loyalty.rewards import reward_redeem

    give(member, program, 5000)
    results = run_threads(
        6,
        lambda index: reward_redeem(
            channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id="SAME"
        )[1],
    )
    assert sorted(results) == [False] * 5 + [True]
    assert Account.objects.get(member=member).balance == 4000
    assert Coupon.objects.count() == 1
