"""Reads of the members app that more than one caller needs."""

from django.db.models import Count, Prefetch, Q
from django.db.models.functions import Right

from . import hooks
from .models import ApiKey, Channel, Consent, Member, MemberTag, Order, OrderLine, api_key_hash


def api_key_by_raw_key(*, raw_key: str) -> ApiKey | None:
    return ApiKey.objects.select_related("channel").filter(key_hash=api_key_hash(raw_key)).first()


def channels_by_code_or_name(texts) -> dict:
    """{text: channel} for the texts that are a channel's code or name (files name channels either way)."""
    texts = set(texts)
    found = {}
    for channel in Channel.objects.filter(Q(name__in=texts) | Q(code__in=texts)):
        found[channel.name] = found[channel.code] = channel
    return {text: found[text] for text in texts if text in found}


def member_list():
    """Members with what their API representation needs, in a fixed number of queries whatever the page size."""
    return Member.objects.prefetch_related(
        Prefetch("consents", queryset=Consent.objects.order_by()),
        Prefetch("member_tags", queryset=MemberTag.objects.select_related("tag").order_by("tag__name")),
    )


def member_by_number(*, member_no: str, with_related: bool = True) -> Member | None:
    members = member_list() if with_related else Member.objects.all()
    return members.filter(member_no=member_no).first()


def member_by_contact(*, phone=None, email=None, channel=None, external_id=None) -> Member | None:
    """The one member a phone, an e-mail or a channel identity belongs to (each an indexed look-up)."""
    if phone:
        return Member.objects.filter(phone=phone).first()
    if email:
        return Member.objects.filter(email=email).first()
    if channel is not None and external_id:
        return Member.objects.filter(identities__channel=channel, identities__external_id=external_id).first()
    return None


def member_consents(member) -> dict:
    current = {consent.channel: consent.granted for consent in member.consents.all()}
    return {channel: current.get(channel, False) for channel in Consent.Channel.values}


def members_loyalty_summary(*, members, channel=None) -> dict:
    """{member_id: {"tier", "points"}} from the loyalty app when installed; empty balances otherwise."""
    summary = {member.pk: {"tier": None, "points": {"balance": 0, "pending": 0}} for member in members}
    for result in hooks.member_loyalty_summary.send(members=members, channel=channel):
        for member_id, values in (result or {}).items():
            summary[member_id].update(values)
    return summary


def duplicate_candidates(*, limit: int = 200) -> list[dict]:
    """Pairs of open members that are likely one person, oldest first as the one to keep.

    Phones and e-mails are unique once normalised, so exact duplicates cannot exist; what remains is the same
    person signed up twice with different contacts: same name and birthday, or same name and the same last eight
    phone digits (one number written with a wrong country code).
    """
    open_members = Member.objects.filter(merged_into__isnull=True, status__in=["active", "frozen"])
    rules = [
        ("name_birthday", open_members.exclude(birthday__isnull=True), ["name", "birthday"]),
        (
            "name_phone",
            open_members.exclude(phone__isnull=True).annotate(phone_tail=Right("phone", 8)),
            ["name", "phone_tail"],
        ),
    ]
    pairs, seen = [], set()
    for why, queryset, keys in rules:
        groups = queryset.values(*keys).annotate(n=Count("id")).filter(n__gt=1).values(*keys)
        condition = Q()
        for group in groups[:limit]:
            condition |= Q(**group)
        if not condition:
            continue
        rows = queryset.filter(condition).order_by(*keys, "joined_at", "pk").values_list(*keys, "pk")
        first_of_group = {}
        for *group_key, pk in rows:
            first = first_of_group.setdefault(tuple(group_key), pk)
            if first != pk and (first, pk) not in seen:
                seen.add((first, pk))
                pairs.append({"keep_id": first, "drop_id": pk, "why": why})
    return pairs[:limit]


def order_stores(*, limit: int = 2000) -> list[str]:
    """The stores orders were placed in (what an earning rule's store scope can name), sorted."""
    return list(Order.objects.exclude(store="").order_by("store").values_list("store", flat=True).distinct()[:limit])


def order_categories(*, limit: int = 2000) -> list[str]:
    """The product categories of order lines (what an earning rule's category scope can name), sorted."""
    lines = OrderLine.objects.exclude(category="").order_by("category")
    return list(lines.values_list("category", flat=True).distinct()[:limit])
