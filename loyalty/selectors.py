"""Reads of the loyalty app that more than one caller needs."""

from django.db.models import Count, Sum

from .models import Account, PointsLot, PointsTransaction, RuleApplication, Tier


def tiers_for(program):
    return Tier.objects.filter(program=program).order_by("rank")


def account_for(*, member, program) -> Account | None:
    return Account.objects.select_related("tier", "program").filter(member=member, program=program).first()


def accounts_by_member(*, member_ids, program) -> dict:
    return {
        account.member_id: account
        for account in Account.objects.select_related("tier").filter(member_id__in=member_ids, program=program)
    }


def points_summary(account: Account | None, *, soonest: int = 5) -> dict:
    if account is None:
        return {"balance": 0, "pending": 0, "lifetime_earned": 0, "expiring": []}
    lots = (
        PointsLot.objects.filter(account=account, status=PointsLot.Status.AVAILABLE, remaining__gt=0)
        .exclude(expires_at__isnull=True)
        .order_by("expires_at", "id")
        .values("expires_at")
        .annotate(points=Sum("remaining"))
        .order_by("expires_at")[:soonest]
    )
    # While the balance is negative no lot is spendable, so nothing is reported as expiring.
    expiring = (
        [{"points": lot["points"], "expires_at": lot["expires_at"]} for lot in lots] if account.balance > 0 else []
    )
    return {
        "balance": account.balance,
        "pending": account.pending,
        "lifetime_earned": account.lifetime_earned,
        "expiring": expiring,
    }


def transactions_for(account: Account):
    return PointsTransaction.objects.filter(account=account).order_by("-id")


def order_points(*, order, program) -> dict:
    """What an order earned: the earn row of that order (the same answer for the first call and every replay)."""
    row = (
        PointsTransaction.objects.filter(order=order, kind=PointsTransaction.Kind.EARN)
        .select_related("lot")
        .order_by("id")
        .first()
    )
    if row is None:
        return {"points_earned": 0, "points_status": "available", "available_at": None}
    return {
        "points_earned": row.points,
        "points_status": row.status,
        "available_at": row.lot.available_at if row.lot else row.created_at,
    }


def refund_points(*, refund) -> int:
    row = PointsTransaction.objects.filter(
        channel_id=refund.channel_id, idempotency_key=f"{refund.channel_id}:refund:{refund.refund_id}"
    ).first()
    return -row.points if row else 0


def event_points(*, event) -> dict:
    applications = RuleApplication.objects.filter(event=event)
    granted = applications.filter(capped=False).aggregate(total=Sum("points"))["total"] or 0
    return {"points_earned": granted, "capped": applications.filter(capped=True).exists()}


def points_liability(*, program=None) -> int:
    accounts = Account.objects.filter(balance__gt=0)
    if program is not None:
        accounts = accounts.filter(program=program)
    return accounts.aggregate(total=Sum("balance"))["total"] or 0


def members_by_tier(*, program):
    return list(
        Account.objects.filter(program=program, member__merged_into__isnull=True)
        .values("tier__code", "tier__name", "tier__rank")
        .annotate(count=Count("id"))
        .order_by("tier__rank")
    )


def accounts_of_members(*, member_ids) -> dict:
    """{(member_id, program_id): account} with programme and tier, in one query."""
    return {
        (account.member_id, account.program_id): account
        for account in Account.objects.filter(member_id__in=member_ids).select_related("program", "tier")
    }


def members_with_opening_balance(*, program, member_ids) -> set:
    """The members among `member_ids` who were already brought over from a previous system into `program`."""
    found = set()
    member_ids = list(member_ids)
    for start in range(0, len(member_ids), 5000):
        found.update(
            PointsTransaction.objects.filter(
                kind=PointsTransaction.Kind.OPENING,
                account__program=program,
                account__member_id__in=member_ids[start : start + 5000],
            ).values_list("account__member_id", flat=True)
        )
    return found


def account_tier_codes(*, program, member_ids) -> dict:
    """{member_id: tier code} of the members' accounts in `program` (one query per 5,000 members)."""
    found = {}
    member_ids = list(member_ids)
    for start in range(0, len(member_ids), 5000):
        found.update(
            Account.objects.filter(program=program, member_id__in=member_ids[start : start + 5000]).values_list(
                "member_id", "tier__code"
            )
        )
    return found


def members_with_standing(queryset):
    """Members annotated with their tier name, points balance (their first programme's account) and total spend
    (brought over at import plus orders net of refunds): one query for a page of the member list."""
    from decimal import Decimal

    from django.db.models import DecimalField, F, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    from members.models import Order

    account = Account.objects.filter(member=OuterRef("pk")).order_by("program_id")
    orders = (
        Order.objects.filter(member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(total=Sum(F("amount") - F("refunded_amount")))
        .values("total")
    )
    money = DecimalField(max_digits=14, decimal_places=2)
    return queryset.annotate(
        tier_name=Subquery(account.values("tier__name")[:1]),
        points_balance=Subquery(account.values("balance")[:1]),
        total_spend=F("imported_spend")
        + Coalesce(Subquery(orders, output_field=money), Value(Decimal(0)), output_field=money),
    )


def member_personal_data(*, member) -> dict:
    """The loyalty part of a member's personal data export: each programme's account with its ledger, coupons,
    redemptions and badges (a fixed number of queries)."""
    from .models import BadgeAward, Coupon, Redemption

    accounts = list(
        Account.objects.filter(member=member)
        .order_by("id")
        .values(
            "id",
            "program__code",
            "tier__code",
            "tier_since",
            "balance",
            "pending",
            "lifetime_earned",
            "lifetime_spent",
            "created_at",
        )
    )
    by_account = {account["id"]: {**account, "ledger": [], "redemptions": [], "badges": []} for account in accounts}
    for row in (
        PointsTransaction.objects.filter(account__member=member)
        .order_by("id")
        .values(
            "account_id", "kind", "points", "balance_after", "status", "reference", "reason", "created_at", "expires_at"
        )
    ):
        by_account[row.pop("account_id")]["ledger"].append(row)
    for row in (
        Redemption.objects.filter(account__member=member)
        .order_by("id")
        .values("account_id", "redemption_id", "reward__code", "quantity", "points_spent", "status", "created_at")
    ):
        by_account[row.pop("account_id")]["redemptions"].append(row)
    for row in (
        BadgeAward.objects.filter(account__member=member)
        .order_by("id")
        .values("account_id", "badge__code", "awarded_at")
    ):
        by_account[row.pop("account_id")]["badges"].append(row)
    for account in by_account.values():
        account.pop("id")
    coupons = list(
        Coupon.objects.filter(member=member)
        .order_by("id")
        .values(
            "code", "template__code", "status", "issued_at", "valid_from", "valid_until", "used_at", "order_reference"
        )
    )
    return {"points": list(by_account.values()), "coupons": coupons}
