"""The points mall: a batch of 100,000 coupon codes, and redemptions per second through the service (one process)."""

import time

BATCH = 100_000
REDEMPTIONS = 2000


def run(context):
    from loyalty import rewards
    from loyalty.adjustments import points_adjust
    from loyalty.demo import demo_program
    from loyalty.ledger import account_get_or_create
    from loyalty.models import CouponTemplate
    from members import services
    from members.demo import demo_members_create
    from members.models import Member

    channel = services.channel_get_or_create(code="bench-mall", name="Bench mall", kind="mini_program")
    program = demo_program()
    template = CouponTemplate.objects.get(program=program, code="cny10")
    count = max(1000, int(BATCH * context.scale))
    started = time.perf_counter()
    batch = rewards.coupons_issue_batch(template=template, count=count, note="bench")
    yield context.result("coupon_batch_issue", batch.coupons.count(), time.perf_counter() - started)

    redemptions = max(100, int(REDEMPTIONS * context.scale))
    if Member.objects.count() < redemptions:
        demo_members_create(count=redemptions, orders_per_member=0)
    members = list(Member.objects.order_by("pk")[:redemptions])
    for member in members:
        points_adjust(account=account_get_or_create(member=member, program=program), points=1000, reason="bench")
    started = time.perf_counter()
    for index, member in enumerate(members):
        rewards.reward_redeem(
            channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id=f"bench-{index}"
        )
    yield context.result("redemptions_service_one_process", len(members), time.perf_counter() - started)
