"""Every write of the campaigns app: one function per business action, atomic, keyword-only arguments."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from members.models import Member

from . import selectors, sending
from .errors import SegmentInUse
from .models import Campaign, Segment, SegmentMember, Variant


def _full_clean(instance, exclude=("program", "created_by")) -> None:
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False)
    except ValidationError as error:
        raise ValidationFailed(fields=error.message_dict) from None


def _check_code_free(*, program, code, exclude_pk=None) -> None:
    taken = Segment.objects.filter(program=program, code=code)
    if exclude_pk:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationFailed(fields={"code": [_("A segment with this code exists already.")]})


@transaction.atomic
def segment_recount(*, segment: Segment, now=None) -> Segment:
    now = now or timezone.now()
    segment.count = selectors.segment_accounts(segment=segment, now=now).count()
    segment.counted_at = now
    Segment.objects.filter(pk=segment.pk).update(count=segment.count, counted_at=segment.counted_at)
    return segment


@transaction.atomic
def segment_create(*, program, code: str, name: str, rule=None, member_ids=None, actor=None) -> Segment:
    """A rule segment (`rule`) or a list segment (`member_ids`); the rule is checked before anything is saved."""
    kind = Segment.Kind.STATIC if member_ids is not None else Segment.Kind.DYNAMIC
    segment = Segment(program=program, code=code, name=name, kind=kind, rule=rule, created_by=actor)
    _full_clean(segment)
    _check_code_free(program=program, code=code)
    if kind == Segment.Kind.DYNAMIC:
        selectors.rule_accounts(program=program, rule=rule, code=code)  # raises on a bad rule
    segment.save()
    if member_ids is not None:
        _list_replace(segment=segment, member_ids=member_ids)
    return segment_recount(segment=segment)


@transaction.atomic
def segment_update(*, segment: Segment, name=None, rule=None, member_ids=None) -> Segment:
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if name is not None:
        segment.name = name
    if rule is not None:
        if segment.kind != Segment.Kind.DYNAMIC:
            raise ValidationFailed(fields={"rule": [_("A list segment has no rule; load its members from a file.")]})
        selectors.rule_accounts(program=segment.program, rule=rule, code=segment.code)
        segment.rule = rule
    _full_clean(segment)
    segment.save(update_fields=["name", "rule", "updated_at"])
    if member_ids is not None:
        if segment.kind != Segment.Kind.STATIC:
            raise ValidationFailed(fields={"members": [_("Only a list segment takes members from a file.")]})
        _list_replace(segment=segment, member_ids=member_ids)
    return segment_recount(segment=segment)


def _list_replace(*, segment: Segment, member_ids) -> None:
    ids = set(Member.objects.filter(pk__in=set(member_ids), merged_into__isnull=True).values_list("pk", flat=True))
    SegmentMember.objects.filter(segment=segment).exclude(member_id__in=ids).delete()
    SegmentMember.objects.bulk_create(
        [SegmentMember(segment=segment, member_id=member_id) for member_id in sorted(ids)],
        ignore_conflicts=True,
        batch_size=5000,
    )


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    referring = selectors.segments_referring_to(segment=segment)
    if referring:
        raise SegmentInUse(
            _("Segments %(codes)s use this segment; change them first.") % {"codes": ", ".join(referring)}
        )
    segment.delete()


SHARE_TOLERANCE = Decimal("0.001")


def _message_errors(prefix: str, message: dict | None) -> dict:
    if not isinstance(message, dict) or not str(message.get("body") or "").strip():
        return {f"{prefix}.body": [_("A message needs a body.")]}
    errors = {}
    for part in ("subject", "body"):
        unknown = sending.placeholders_check(str(message.get(part) or ""))
        if unknown:
            errors[f"{prefix}.{part}"] = [
                _("Unknown placeholders %(names)s; use %(known)s.")
                % {"names": ", ".join(unknown), "known": ", ".join(f"{{{name}}}" for name in sending.PLACEHOLDERS)}
            ]
    return errors


@transaction.atomic
def campaign_create(
    *,
    program,
    code: str,
    name: str,
    segment: Segment,
    channel: str,
    message: dict | None = None,
    variants=None,
    control_share: Decimal = Decimal(0),
    conversion_days: int = 14,
    coupon_template=None,
    points: int | None = None,
    scheduled_at=None,
    actor=None,
) -> Campaign:
    """A campaign to `segment`; without `variants` its `message` is the one variant "A". Nothing is sent yet."""
    errors = {}
    if segment.program_id != program.pk:
        errors["segment"] = [_("This segment belongs to another programme.")]
    if not variants:
        errors.update(_message_errors("message", message))
    else:
        codes = [variant["code"] for variant in variants]
        if len(set(codes)) != len(codes):
            errors["variants"] = [_("Each variant needs its own code.")]
        for index, variant in enumerate(variants):
            if not variant.get("message") and not message:
                errors[f"variants[{index}].message"] = [_("A message needs a body.")]
    if coupon_template is not None and coupon_template.program_id != program.pk:
        errors["offer.coupon_template"] = [_("This coupon template belongs to another programme.")]
    if Campaign.objects.filter(program=program, code=code).exists():
        errors["code"] = [_("A campaign with this code exists already.")]
    if errors:
        raise ValidationFailed(fields=errors)
    campaign = Campaign(
        program=program,
        code=code,
        name=name,
        segment=segment,
        channel=channel,
        control_share=control_share,
        conversion_days=conversion_days,
        offer_coupon_template=coupon_template,
        offer_points=points or None,
        scheduled_at=scheduled_at,
        status=Campaign.Status.SCHEDULED if scheduled_at else Campaign.Status.DRAFT,
        created_by=actor,
    )
    _full_clean(campaign, exclude=("program", "segment", "created_by", "offer_coupon_template"))
    campaign.save()
    for variant in variants or [{"code": "A", "share": 1, "message": message}]:
        text = variant.get("message") or message
        Variant.objects.create(
            campaign=campaign,
            code=variant["code"],
            share=Decimal(str(variant["share"])),
            subject=text.get("subject") or "",
            body=text["body"],
        )
    campaign_check(campaign=campaign)
    return campaign


def campaign_check(*, campaign: Campaign) -> None:
    """What a campaign needs before it can be sent: variants with their own codes whose shares add up to 1, and
    messages whose placeholders can be filled. Raises ValidationFailed with the fields at fault."""
    variants = list(campaign.variants.order_by("code"))
    errors = {}
    if not variants:
        errors["variants"] = [_("A campaign needs at least one variant (its message).")]
    total = sum((variant.share for variant in variants), Decimal(0))
    if variants and abs(total - 1) > SHARE_TOLERANCE:
        errors["variants"] = [_("The variants' shares add up to %(total)s; they must add up to 1.") % {"total": total}]
    if any(variant.code == "control" for variant in variants):
        errors["variants"] = [_("No variant may be called control: that is the held-out group.")]
    for index, variant in enumerate(variants):
        errors.update(_message_errors(f"variants[{index}].message", {"subject": variant.subject, "body": variant.body}))
    if errors:
        raise ValidationFailed(fields=errors)
