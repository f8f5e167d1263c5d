"""Reads of the members app that more than one caller needs."""

from django.db.models import Count, Prefetch, Q, Sum
from django.db.models.functions import Right
from django.utils.translation import gettext as _

from . import extensions
from .models import (
    ApiKey,
    Channel,
    ChannelIdentity,
    Consent,
    ConsentChange,
    Event,
    Member,
    MemberHistory,
    MemberMerge,
    MemberTag,
    Order,
    OrderLine,
    Refund,
    api_key_hash,
)


def api_key_by_raw_key(*, raw_key: str) -> ApiKey | None:
    return ApiKey.objects.select_related("channel").filter(key_hash=api_key_hash(raw_key)).first()


def channels_by_code_or_name(texts) -> dict:
    """{text: channel} for the texts that are a channel's code or name (files name channels either way)."""
    texts = set(texts)
    found = {}
    for channel in Channel.objects.filter(Q(name__in=texts) | Q(code__in=texts)):
        found[channel.name] = found[channel.code] = channel
    return {text: found[text] for text in texts if text in found}


def members_visible_to(*, channel, queryset=None):
    """The members `channel` may see, list, read and change: its programme's members (the entries of
    `extensions.member_visibility` decide which).

    The one scoping rule of every member-scoped partner endpoint; `channel=None` (staff, jobs) sees everyone."""
    queryset = Member.objects.all() if queryset is None else queryset
    if channel is None:
        return queryset
    for condition in [entry(channel=channel) for entry in extensions.member_visibility]:
        if condition is not None:
            queryset = queryset.filter(condition)
    return queryset


def member_is_visible(*, member, channel) -> bool:
    return members_visible_to(channel=channel, queryset=Member.objects.filter(pk=member.pk)).exists()


def member_list():
    """Members with what their API representation needs, in a fixed number of queries whatever the page size."""
    return Member.objects.prefetch_related(
        Prefetch("consents", queryset=Consent.objects.order_by()),
        Prefetch("member_tags", queryset=MemberTag.objects.select_related("tag").order_by("tag__name")),
    )


def member_by_number(*, member_no: str, with_related: bool = True, visible_to=None) -> Member | None:
    """The member with this number; with `visible_to` (a partner's channel), only if that channel may see them."""
    members = member_list() if with_related else Member.objects.all()
    return members_visible_to(channel=visible_to, queryset=members).filter(member_no=member_no).first()


def member_by_contact(*, phone=None, email=None, channel=None, external_id=None, visible_to=None) -> Member | None:
    """The one member a phone, an e-mail or a channel identity belongs to (each an indexed look-up)."""
    members = members_visible_to(channel=visible_to)
    if phone or email:
        found = members.filter(**({"phone": phone} if phone else {"email": email})).first()
        if found is not None:
            return found
        kept = member_by_former_contact(phone=phone, email=email)
        return members.filter(pk=kept.pk).first() if kept is not None else None
    if channel is not None and external_id:
        return members.filter(identities__channel=channel, identities__external_id=external_id).first()
    return None


def member_by_former_contact(*, phone=None, email=None) -> Member | None:
    """The member a merged-away member's phone or e-mail now leads to (following the pointers of later merges)."""
    if not (phone or email):
        return None
    merge = MemberMerge.objects.filter(**({"dropped_phone": phone} if phone else {"dropped_email": email})).first()
    member = merge.kept if merge is not None else None
    for _hop in range(10):  # a kept member merged away later in turn
        if member is None or member.merged_into_id is None:
            break
        member = member.merged_into
    return member


def member_consents(member) -> dict:
    current = {consent.channel: consent.granted for consent in member.consents.all()}
    return {channel: current.get(channel, False) for channel in Consent.Channel.values}


def members_loyalty_summary(*, members, channel=None) -> dict:
    """{member_id: {"tier", "points", "rfm", "clv"}} from the apps that answer the registry (loyalty: tier and
    points; analytics: RFM code and CLV); empty balances and no scores otherwise."""
    summary = {
        member.pk: {"tier": None, "points": {"balance": 0, "pending": 0}, "rfm": None, "clv": None}
        for member in members
    }
    for entry in extensions.member_loyalty_summary:
        result = entry(members=members, channel=channel)
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


def members_compare(*, keep, drop) -> list[tuple]:
    """(label, kept member's value, merged-away member's value) rows for the merge page: what each one has, with
    the rows higher apps add (tier and points) through `extensions.member_compare_rows`."""
    rows = []
    for label, name in ((_("channel identities"), "identities"), (_("tags"), "member_tags"), (_("events"), "events")):
        rows.append((label, getattr(keep, name).count(), getattr(drop, name).count()))
    orders = {member.pk: member.orders.aggregate(count=Count("id"), spend=Sum("amount")) for member in (keep, drop)}
    rows.append((_("orders"), orders[keep.pk]["count"], orders[drop.pk]["count"]))
    rows.append((_("order spend"), orders[keep.pk]["spend"] or 0, orders[drop.pk]["spend"] or 0))
    rows.extend(extensions.member_compare_rows.collect(keep=keep, drop=drop))
    return rows


def order_stores(*, limit: int = 2000) -> list[str]:
    """The stores orders were placed in (what an earning rule's store scope can name), sorted."""
    return list(Order.objects.exclude(store="").order_by("store").values_list("store", flat=True).distinct()[:limit])


def order_categories(*, limit: int = 2000) -> list[str]:
    """The product categories of order lines (what an earning rule's category scope can name), sorted."""
    lines = OrderLine.objects.exclude(category="").order_by("category")
    return list(lines.values_list("category", flat=True).distinct()[:limit])


def member_personal_data(*, member) -> dict:
    """Everything the CRM holds about one person, as JSON-able data (PIPL/GDPR access and portability).

    The members app's part here; higher apps add theirs through `extensions.member_personal_data` (points and the
    ledger,
    coupons, redemptions, badges, messages). A fixed number of queries per section, however long the history."""
    from django.utils import timezone

    profile = Member.objects.filter(pk=member.pk).values(
        "member_no",
        "name",
        "phone",
        "email",
        "gender",
        "birthday",
        "city",
        "country",
        "language",
        "status",
        "joined_at",
        "join_channel__code",
        "referrer__member_no",
        "closed_at",
        "erased_at",
        "imported_spend",
    )[0]
    orders = list(
        Order.objects.filter(member=member)
        .order_by("occurred_at", "id")
        .values(
            "id", "channel__code", "order_id", "store", "amount", "refunded_amount", "currency", "occurred_at", "status"
        )
    )
    lines, refunds = {}, {}
    for line in (
        OrderLine.objects.filter(order__member=member)
        .order_by("id")
        .values("order_id", "sku", "name", "category", "quantity", "amount")
    ):
        lines.setdefault(line.pop("order_id"), []).append(line)
    for refund in (
        Refund.objects.filter(order__member=member)
        .order_by("id")
        .values("order_id", "channel__code", "refund_id", "amount", "lines", "created_at")
    ):
        refunds.setdefault(refund.pop("order_id"), []).append(refund)
    for order in orders:
        pk = order.pop("id")
        order["lines"], order["refunds"] = lines.get(pk, []), refunds.get(pk, [])
    data = {
        "exported_at": timezone.now(),
        "member": profile,
        "identities": list(
            ChannelIdentity.objects.filter(member=member)
            .order_by("id")
            .values("channel__code", "external_id", "created_at")
        ),
        "consents": list(
            Consent.objects.filter(member=member)
            .order_by("channel")
            .values("channel", "granted", "source", "updated_at")
        ),
        "consent_history": list(
            ConsentChange.objects.filter(member=member)
            .order_by("created_at", "id")
            .values("channel", "granted", "source", "created_at")
        ),
        "tags": list(MemberTag.objects.filter(member=member).order_by("tag__name").values_list("tag__name", flat=True)),
        "orders": orders,
        "events": list(
            Event.objects.filter(member=member)
            .order_by("occurred_at", "id")
            .values("channel__code", "event_id", "type", "name", "occurred_at", "attributes")
        ),
        "history": list(
            MemberHistory.objects.filter(member=member)
            .order_by("created_at", "id")
            .values("action", "changes", "created_at")
        ),
    }
    for result in [entry(member=member) for entry in extensions.member_personal_data]:
        data.update(result or {})
    return data
