"""Opening balances and tiers brought over from a previous system (the member import's points and tier
columns), set-based: a few statements per batch whatever its size."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ValidationFailed

from . import rules as rule_strategies
from .ledger import Kind
from .models import (
    Account,
    PointsLot,
    PointsTransaction,
    Program,
    TierChange,
)
from .program_config import entry_tier, program_config


@transaction.atomic
def opening_balances_record(*, program: Program, entries, actor=None) -> dict:
    """Bring over balances and tiers from a previous system: for each entry {"member_id", "points_balance",
    "tier" (code or ""), "expires_at" (optional)} an `opening` ledger row with its own lot and expiry, and the tier
    set as a manual move. Once per member and programme: a member who has an opening row already is left as is.
    Set-based: a few statements per batch whatever its size."""
    entries = list(entries)
    tiers = {tier.code: tier for tier in program_config(program)["tiers"]}
    unknown = sorted({entry["tier"] for entry in entries if entry.get("tier") and entry["tier"] not in tiers})
    if unknown:
        raise ValidationFailed(
            _("Unknown tier codes: %(codes)s. This programme has: %(known)s.")
            % {"codes": ", ".join(unknown), "known": ", ".join(tiers)},
            fields={"tier": [_("Unknown tier.")]},
        )
    if any(int(entry.get("points_balance") or 0) < 0 for entry in entries):
        raise ValidationFailed(fields={"points_balance": [_("An opening balance cannot be negative.")]})
    member_ids = [entry["member_id"] for entry in entries]
    done = set(
        PointsTransaction.objects.filter(
            kind=Kind.OPENING, account__program=program, account__member_id__in=member_ids
        ).values_list("account__member_id", flat=True)
    )
    todo = [entry for entry in entries if entry["member_id"] not in done]
    if not todo:
        return {"opened": 0, "skipped": len(entries)}
    now = timezone.now()
    first_tier = entry_tier(program)
    existing = set(
        Account.objects.filter(program=program, member_id__in=member_ids).values_list("member_id", flat=True)
    )
    Account.objects.bulk_create(
        [
            Account(member_id=entry["member_id"], program=program, tier=first_tier, tier_since=now)
            for entry in todo
            if entry["member_id"] not in existing
        ],
        ignore_conflicts=True,
    )
    accounts = {
        account.member_id: account
        for account in Account.objects.select_for_update(of=("self",))
        .filter(program=program, member_id__in=[entry["member_id"] for entry in todo])
        .order_by("pk")
    }
    lots, rows, moves = [], [], []
    for entry in todo:
        account = accounts[entry["member_id"]]
        points = int(entry.get("points_balance") or 0)
        if points > 0:
            expires_at = entry.get("expires_at") or rule_strategies.expiry_for(program, now)
            lot = PointsLot(
                account=account,
                points=points,
                remaining=points,
                status=PointsLot.Status.AVAILABLE,
                available_at=now,
                expires_at=expires_at,
                reference="opening",
            )
            lots.append(lot)
            account.balance += points
            account.lifetime_earned += points
            rows.append(
                PointsTransaction(
                    account=account,
                    kind=Kind.OPENING,
                    points=points,
                    balance_after=account.balance,
                    reference="opening",
                    reason=_("Opening balance from the previous system"),
                    idempotency_key=f"opening:{program.pk}:{account.member_id}",
                    actor=actor,
                    lot=lot,
                    expires_at=expires_at,
                )
            )
        tier = tiers.get(entry.get("tier") or "")
        if tier is not None and tier.pk != account.tier_id:
            moves.append(
                TierChange(
                    account=account,
                    from_tier_id=account.tier_id,
                    to_tier=tier,
                    reason=TierChange.Reason.MANUAL,
                    note=_("Tier from the previous system"),
                    actor=actor,
                    created_at=now,
                )
            )
            account.tier, account.tier_since = tier, now
    PointsLot.objects.bulk_create(lots, batch_size=2000)
    for row in rows:
        row.lot_id = row.lot.pk
    PointsTransaction.objects.bulk_create(rows, batch_size=2000)
    TierChange.objects.bulk_create(moves, batch_size=2000)
    Account.objects.bulk_update(
        list(accounts.values()), ["balance", "lifetime_earned", "tier", "tier_since"], batch_size=2000
    )
    return {"opened": len(todo), "skipped": len(entries) - len(todo), "points": sum(row.points for row in rows)}
