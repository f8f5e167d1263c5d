"""Reads of the campaigns app: who a segment holds, now."""

import contextlib

from django.db.models import OuterRef, Q, Subquery
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from loyalty.models import Account
from members.importing.engine import read_table
from members.models import Member
from members.normalize import normalize_phone

from . import rules
from .models import Campaign, Message, Recipient, Segment, SegmentMember, Webhook

SAMPLE_SIZE = 20


def _segment_q(code, context) -> Q:
    """Resolve a `segment` condition: the other segment's rule (compiled in place) or its list."""
    segment = Segment.objects.filter(program=context.program, code=code).first()
    if segment is None:
        raise ValidationFailed(fields={"rule": [_("No segment with code %(code)s.") % {"code": code}]})
    if segment.kind == Segment.Kind.STATIC:
        return Q(member_id__in=SegmentMember.objects.filter(segment=segment).values("member_id"))
    if code in context.resolving:
        raise ValidationFailed(fields={"rule": [_("Segment %(code)s refers to itself.") % {"code": code}]})
    context.resolving.add(code)
    try:
        return rules.rule_compile(segment.rule, context)
    finally:
        context.resolving.discard(code)


def context_for(*, program, now=None, code=None) -> rules.Context:
    context = rules.Context(program=program, now=now, segment_resolver=_segment_q)
    if code:
        context.resolving.add(code)
    return context


def rule_accounts(*, program, rule, now=None, code=None):
    """The accounts of the programme's active members that match `rule` (one query, not yet run)."""
    return rules.matching_accounts(rule, context_for(program=program, now=now, code=code))


def segment_accounts(*, segment: Segment, now=None):
    if segment.kind == Segment.Kind.STATIC:
        return Account.objects.filter(
            program_id=segment.program_id,
            member__status=Member.Status.ACTIVE,
            member_id__in=SegmentMember.objects.filter(segment=segment).values("member_id"),
        )
    return rule_accounts(program=segment.program, rule=segment.rule, now=now, code=segment.code)


def segment_member_numbers(*, segment: Segment, now=None):
    """Member numbers of the segment, ordered by member number (a stable order to page through)."""
    return (
        segment_accounts(segment=segment, now=now)
        .order_by("member__member_no")
        .values_list("member__member_no", flat=True)
    )


def rule_preview(*, program, rule, now=None) -> dict:
    accounts = rule_accounts(program=program, rule=rule, now=now)
    sample = list(accounts.order_by("member__member_no").values_list("member__member_no", flat=True)[:SAMPLE_SIZE])
    return {"count": accounts.count(), "sample": sample}


def segments_for(*, program):
    return Segment.objects.filter(program=program).order_by("code")


def segment_by_code(*, program, code) -> Segment | None:
    return Segment.objects.filter(program=program, code=code).first()


def segments_referring_to(*, segment: Segment) -> list[str]:
    """Codes of the programme's segments whose rule names `segment` (a `segment` condition)."""
    return [
        other.code
        for other in Segment.objects.filter(program_id=segment.program_id, kind=Segment.Kind.DYNAMIC).exclude(
            pk=segment.pk
        )
        if segment.code in _named_segments(other.rule)
    ]


def _named_segments(node) -> set:
    if isinstance(node, dict):
        if node.get("field") == "segment":
            value = node.get("value")
            return set(value) if isinstance(value, list) else {value}
        return set().union(*(_named_segments(item) for key in ("all", "any") for item in node.get(key) or []))
    return set()


def members_in_file(*, data: bytes) -> tuple[list[int], list[tuple[int, str]]]:
    """The members a file lists (a CSV or XLSX of phone numbers in any spelling, or member numbers), read as the
    member import reads files. Returns (member ids, [(row number, value) that matched no member]); merged-away
    members count as the member they were merged into. Two queries, whatever the file's size."""
    headers, table = read_table(data)
    rows = [headers, *table]
    first = 1
    if headers and not _looks_like_member(headers[0]):
        rows, first = table, 2  # a header row
    values = [(number, str(row[0]).strip()) for number, row in enumerate(rows, start=first) if row and row[0].strip()]
    phones = {}
    for number, value in values:
        with contextlib.suppress(ValueError):
            phones[number] = normalize_phone(value)
    found = {
        key: merged or pk
        for key, pk, merged in Member.objects.filter(member_no__in=[value for _number, value in values]).values_list(
            "member_no", "pk", "merged_into_id"
        )
    }
    found.update(
        {
            phone: merged or pk
            for phone, pk, merged in Member.objects.filter(phone__in=set(phones.values())).values_list(
                "phone", "pk", "merged_into_id"
            )
        }
    )
    matched, unmatched = [], []
    for number, value in values:
        member_id = found.get(value) or found.get(phones.get(number))
        if member_id:
            matched.append(member_id)
        else:
            unmatched.append((number, value))
    return matched, unmatched


def _looks_like_member(text: str) -> bool:
    if text.isdigit():
        return True
    try:
        normalize_phone(text)
    except ValueError:
        return False
    return True


def campaigns_for(*, program):
    return Campaign.objects.filter(program=program).order_by("-created_at", "-id")


def campaign_by_code(*, program, code) -> Campaign | None:
    return Campaign.objects.filter(program=program, code=code).first()


def campaign_audience(*, campaign: Campaign):
    """The frozen audience with each member's message outcome (status null for the control group)."""
    outcome = Message.objects.filter(campaign_id=campaign.pk, member_id=OuterRef("member_id"))
    return (
        Recipient.objects.filter(campaign=campaign)
        .select_related("member")
        .annotate(status=Subquery(outcome.values("status")[:1]), reason=Subquery(outcome.values("reason")[:1]))
        .order_by("id")
    )


def messages_of(*, member, program=None):
    """The member's messages, newest first (a channel sees its programme's campaigns' messages)."""
    messages = Message.objects.filter(member=member).select_related("campaign")
    if program is not None:
        messages = messages.filter(Q(campaign__program=program) | Q(campaign__isnull=True))
    return messages.order_by("-created_at", "-id")


def webhooks_of(*, channel):
    return Webhook.objects.filter(channel=channel).order_by("-id")
