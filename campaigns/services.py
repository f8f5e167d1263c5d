"""Every write of the campaigns app: one function per business action, atomic, keyword-only arguments."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import ValidationFailed
from members.models import Member

from . import selectors
from .errors import SegmentInUse
from .models import Segment, SegmentMember


def _full_clean(segment: Segment) -> None:
    from django.core.exceptions import ValidationError

    try:
        segment.full_clean(exclude=["program", "created_by"], validate_unique=False)
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
