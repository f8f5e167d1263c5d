"""Every write of the members app: one function per business action, keyword-only, atomic.

Over 500 lines because it holds every write of the app on purpose (channels and keys, members, statuses, tags,
identities, merge, orders, refunds, events), in sections; the import's writes are in `members/importing/`.
"""

import datetime as dt
import hashlib
import json
import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import insert_unless_exists, sequence_values
from core.errors import ValidationFailed
from core.idempotency import canonical, payload_fingerprint, replay, replay_of

from . import events
from .errors import DuplicateMember, MemberNotActive, MergeRefused, RefundExceedsOrder
from .models import (
    API_SCOPES,
    ApiKey,
    Channel,
    ChannelIdentity,
    Consent,
    ConsentChange,
    Event,
    Member,
    MemberHistory,
    MemberMerge,
    MemberNote,
    MemberNumberCounter,
    MemberTag,
    Order,
    OrderLine,
    Refund,
    Tag,
    api_key_hash,
    validate_contact,
)
from .normalize import check_event_attributes, clean_text

MEMBER_NO_FIRST = 1_000_000
CONSENT_CHANNELS = [choice.value for choice in Consent.Channel]


# --- channels and API keys -------------------------------------------------------------------------------------


@transaction.atomic
def channel_get_or_create(*, code: str, name: str = "", kind: str = Channel.Kind.PARTNER) -> Channel:
    channel, created = Channel.objects.get_or_create(code=code, defaults={"name": name or code, "kind": kind})
    if created:
        events.channel_created.send(channel=channel)
    return channel


@transaction.atomic
def api_key_create(*, channel: Channel, scopes, name: str = "", created_by=None) -> tuple[ApiKey, str]:
    """Create a key for `channel`; returns the row and the raw key, which is never stored and shown only once."""
    scopes = sorted(set(scopes))
    unknown = [scope for scope in scopes if scope not in API_SCOPES]
    if unknown:
        raise ValidationFailed(
            _("Unknown scopes: %(unknown)s. Known scopes: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(API_SCOPES)},
            fields={"scopes": [_("Unknown scope.")]},
        )
    if not scopes:
        raise ValidationFailed(_("A key needs at least one scope."), fields={"scopes": [_("Choose at least one.")]})
    prefix = "ck_" + secrets.token_hex(4)
    raw_key = f"{prefix}.{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        channel=channel, name=name, prefix=prefix, key_hash=api_key_hash(raw_key), scopes=scopes, created_by=created_by
    )
    api_key.full_clean()
    api_key.save()
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey, revoked_by=None) -> ApiKey:
    # A conditional UPDATE keeps the first revocation's time and author when two staff revoke at once.
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    api_key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return api_key


def api_key_mark_used(*, api_key_id: int) -> None:
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=timezone.now())


# --- member numbers --------------------------------------------------------------------------------------------


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit doubled, with the digits of the product added up


def luhn_check_digit(digits: str) -> str:
    # From the right, every other digit (starting with the last) is doubled.
    total = sum(_LUHN_DOUBLED[int(char)] for char in digits[::-1][::2]) + sum(int(char) for char in digits[::-1][1::2])
    return str((10 - total % 10) % 10)


def format_member_no(value: int) -> str:
    # Digits only (read out over the phone, typed at a POS) with a Luhn check digit that catches a mistyped digit.
    digits = str(MEMBER_NO_FIRST + value)
    return digits + luhn_check_digit(digits)


def member_numbers_allocate(*, count: int) -> list[str]:
    """`count` new member numbers, never handed out before (a sequence: numbers are never reused)."""
    if count <= 0:
        return []
    if connection.vendor == "postgresql":
        values = sequence_values(count, sequence="members_member_no_seq")  # an import asks for 100,000 at once
    else:
        with transaction.atomic():
            counter, _created = MemberNumberCounter.objects.get_or_create(pk=1)
            MemberNumberCounter.objects.filter(pk=1).update(last_value=F("last_value") + count)
            counter.refresh_from_db()
            values = range(counter.last_value - count + 1, counter.last_value + 1)
    return [format_member_no(value) for value in values]


# --- members ---------------------------------------------------------------------------------------------------


def _duplicate_error(member_no: str, field: str) -> DuplicateMember:
    return DuplicateMember(
        _("A member with this %(field)s already exists: %(member_no)s.") % {"field": field, "member_no": member_no},
        member_no=member_no,
        fields={field: [_("Already belongs to member %(member_no)s.") % {"member_no": member_no}]},
    )


def _raise_if_taken(*, phone=None, email=None, channel=None, external_id=None, exclude_pk=None) -> None:
    checks = []
    if phone:
        checks.append(("phone", Member.objects.filter(phone=phone)))
    if email:
        checks.append(("email", Member.objects.filter(email=email)))
    if channel is not None and external_id:
        checks.append(
            ("external_id", Member.objects.filter(identities__channel=channel, identities__external_id=external_id))
        )
    for field, queryset in checks:
        if exclude_pk is not None:
            queryset = queryset.exclude(pk=exclude_pk)
        member_no = queryset.values_list("member_no", flat=True).first()
        if member_no:
            raise _duplicate_error(member_no, field)


def _refusal(error: ValidationError) -> ValidationFailed:
    """Django's ValidationError (a model rule) as the API's refusal, with API.md's field names."""
    by_field = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    fields = {("non_field_errors" if name == "__all__" else name): messages for name, messages in by_field.items()}
    first = next(iter(fields.values()))[0]
    return ValidationFailed(first, fields=fields)


def _full_clean(member: Member) -> None:
    """The model's own rules (birthday, contact, choices, lengths): DRF and the import never call full_clean."""
    try:
        member.full_clean(exclude=["member_no", "phone", "email"], validate_unique=False)
    except ValidationError as error:
        raise _refusal(error) from None


@transaction.atomic
def member_note_add(*, member: Member, text: str, actor) -> MemberNote:
    """A note by staff on a member's page."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(_("Write the note."), fields={"text": [_("Write the note.")]})
    note = MemberNote(member=member, text=text, created_by=actor)
    try:
        note.full_clean(exclude=["member", "created_by"])
    except ValidationError as error:
        raise ValidationFailed(fields=error.message_dict) from None
    note.save()
    return note


def _history(member, action, *, changes=None, actor=None, channel=None) -> None:
    MemberHistory.objects.create(member=member, action=action, changes=changes or {}, actor=actor, channel=channel)


def _consents_apply(*, member, consents, source, actor=None, at=None) -> dict:
    """Set the consents given (channel -> bool); record each real change. Returns {channel: granted} changed."""
    at = at or timezone.now()
    current = {consent.channel: consent for consent in member.consents.all()}
    changed = {}
    for channel, granted in consents.items():
        if channel not in CONSENT_CHANNELS:
            raise ValidationFailed(fields={f"consents.{channel}": [_("Unknown message channel.")]})
        existing = current.get(channel)
        if existing is not None and existing.granted == bool(granted):
            continue
        Consent.objects.update_or_create(
            member=member, channel=channel, defaults={"granted": bool(granted), "source": source, "updated_at": at}
        )
        ConsentChange.objects.create(
            member=member, channel=channel, granted=bool(granted), source=source, changed_by=actor, created_at=at
        )
        changed[channel] = bool(granted)
    return changed


@transaction.atomic
def consents_record(*, member: Member, consents: dict, source: str, actor=None) -> dict:
    """Consents given or withdrawn outside a profile change (a reply "TD" to an SMS, an unsubscribe link), recorded
    with where they came from. Returns {channel: granted} for those that changed."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    return _consents_apply(member=member, consents=consents, source=source, actor=actor)


@transaction.atomic
def member_create(
    *,
    name: str,
    phone: str | None = None,
    email: str | None = None,
    channel: Channel | None = None,
    external_id: str | None = None,
    gender: str = Member.Gender.UNKNOWN,
    birthday: dt.date | None = None,
    city: str = "",
    country: str = "",
    language: str = "",
    consents: dict | None = None,
    referrer: Member | None = None,
    joined_at: dt.datetime | None = None,
    actor=None,
) -> Member:
    """Sign a person up. `phone` and `email` must already be normalised (see `members.normalize`)."""
    try:
        validate_contact(phone=phone, email=email, external_id=external_id)
    except ValidationError as error:
        raise _refusal(error) from None
    if external_id and channel is None:
        raise ValidationFailed(fields={"external_id": [_("An external id needs a channel.")]})
    _raise_if_taken(phone=phone, email=email, channel=channel, external_id=external_id)
    member = Member(
        member_no=member_numbers_allocate(count=1)[0],
        name=clean_text(name),
        phone=phone or None,
        email=email or None,
        gender=gender,
        birthday=birthday,
        city=clean_text(city),
        country=country,
        language=language,
        joined_at=joined_at or timezone.now(),
        join_channel=channel,
        referrer=referrer,
    )
    member.external_id_to_link = external_id or ""
    _full_clean(member)
    try:
        # A savepoint, so that losing a race with a concurrent sign-up becomes a clean 409, not a broken transaction.
        with transaction.atomic():
            member.save()
            if external_id:
                ChannelIdentity.objects.create(member=member, channel=channel, external_id=external_id)
    except IntegrityError:
        _raise_if_taken(phone=phone, email=email, channel=channel, external_id=external_id)
        raise
    if consents:
        _consents_apply(member=member, consents=consents, source=_source(channel, actor), actor=actor)
    _history(member, "created", actor=actor, channel=channel)
    events.member_joined.send(member=member, channel=channel)
    return member


def _people_matching(*, phone=None, email=None, channel=None, external_id=None) -> list[tuple[str, Member]]:
    """(field, member) for each of phone, e-mail and this channel's identity that already belongs to a member."""
    found = []
    if phone:
        found.append(("phone", Member.objects.filter(phone=phone).first()))
    if email:
        found.append(("email", Member.objects.filter(email=email).first()))
    if channel is not None and external_id:
        identity = ChannelIdentity.objects.filter(channel=channel, external_id=external_id).first()
        found.append(("external_id", identity.member if identity else None))
    return [(field, member) for field, member in found if member is not None]


@transaction.atomic
def member_sign_up(*, channel: Channel, name: str, phone=None, email=None, external_id=None, **profile) -> tuple:
    """A partner channel signs a person up. Returns (member, created).

    A person unknown to the CRM becomes a new member. A person who is already a member of another programme only
    (same phone, e-mail or identity) joins this channel's programme: the same member, blank fields filled from the
    request, nothing overwritten (API.md: Members). A member this channel already sees is a `duplicate_member`.
    """
    matches = _people_matching(phone=phone, email=email, channel=channel, external_id=external_id)
    if not matches:
        return member_create(
            channel=channel, name=name, phone=phone, email=email, external_id=external_id, **profile
        ), True
    field, member = matches[0]
    if any(other.pk != member.pk for _field, other in matches):
        other_field, other = next((f, m) for f, m in matches if m.pk != member.pk)
        raise _duplicate_error(other.member_no, other_field)  # two people: nothing to join
    # Locked, and checked again under the lock: of two concurrent sign-ups in one programme, the second sees the
    # first's account and is a duplicate.
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.CLOSED or _visible(member, channel):
        raise _duplicate_error(member.member_no, field)
    _join(member=member, channel=channel, name=name, phone=phone, email=email, external_id=external_id, **profile)
    return member, False


def _visible(member, channel) -> bool:
    from .selectors import member_is_visible

    return member_is_visible(member=member, channel=channel)


def _join(*, member, channel, phone, email, external_id, consents=None, referrer=None, name="", **profile) -> None:
    fills = {}
    for field, value in {"phone": phone, "email": email, **profile}.items():
        if field == "gender":
            if member.gender == Member.Gender.UNKNOWN and value and value != Member.Gender.UNKNOWN:
                fills[field] = value
        elif value and not getattr(member, field):
            fills[field] = clean_text(value) if field == "city" else value
    if fills:
        # The contacts filled must be free: one that belongs to someone else refuses the whole sign-up.
        _raise_if_taken(phone=fills.get("phone"), email=fills.get("email"), exclude_pk=member.pk)
        for field, value in fills.items():
            setattr(member, field, value)
        _full_clean(member)
        member.save(update_fields=[*fills, "updated_at"])
    if external_id:
        ChannelIdentity.objects.get_or_create(channel=channel, external_id=external_id, defaults={"member": member})
    current = set(member.consents.values_list("channel", flat=True))
    new_consents = {key: value for key, value in (consents or {}).items() if key not in current}
    if new_consents:
        _consents_apply(member=member, consents=new_consents, source=_source(channel, None))
    _history(member, "joined", changes={key: _jsonable(value) for key, value in fills.items()}, channel=channel)
    events.member_joined.send(member=member, channel=channel)


def _source(channel, actor) -> str:
    if channel is not None:
        return f"api:{channel.code}"
    if actor is not None:
        return f"staff:{actor.get_username()}"
    return "system"


UPDATABLE_FIELDS = ("name", "phone", "email", "gender", "birthday", "city", "country", "language", "referrer")


@transaction.atomic
def member_update(*, member: Member, data: dict, consents: dict | None = None, actor=None, channel=None) -> Member:
    """Change profile fields (`data`: field -> new value, already normalised); records who changed what."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    unknown = set(data) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValidationFailed(fields={field: [_("This field cannot be changed.")] for field in sorted(unknown)})
    _raise_if_taken(phone=data.get("phone"), email=data.get("email"), exclude_pk=member.pk)
    if data.get("referrer") is not None and data["referrer"].pk == member.pk:
        raise ValidationFailed(fields={"referrer": [_("A member cannot refer themselves.")]})
    changes = {}
    for field, value in data.items():
        if field in ("phone", "email"):
            value = value or None
        elif field in ("name", "city") and value is not None:
            value = clean_text(value)
        old = getattr(member, field)
        if old != value:
            changes[field] = [_jsonable(old), _jsonable(value)]
            setattr(member, field, value)
    if changes:
        _full_clean(member)
        try:
            with transaction.atomic():
                member.save(update_fields=[*(f for f in changes), "updated_at"])
        except IntegrityError:
            _raise_if_taken(phone=data.get("phone"), email=data.get("email"), exclude_pk=member.pk)
            raise
    if consents:
        consent_changes = _consents_apply(member=member, consents=consents, source=_source(channel, actor), actor=actor)
        changes.update({f"consent_{key}": value for key, value in consent_changes.items()})
    if changes:
        _history(member, "updated", changes=changes, actor=actor, channel=channel)
        events.member_updated.send(member=member, changes=changes, channel=channel)
    return member


def _jsonable(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Member):
        return value.member_no
    return value


# The statuses a member may come from, where not every one may: only a frozen member is unfrozen (a closed
# member is not reopened by "unfreeze").
STATUS_CHANGES_FROM = {Member.Status.ACTIVE: (Member.Status.FROZEN,)}


@transaction.atomic
def members_set_status(*, member_ids, status: str, actor=None, reason: str = "") -> int:
    """Freeze, unfreeze or close members; a merged member stays closed, and only a frozen member becomes active
    again. Members the change does not apply to are left alone. Returns how many changed."""
    if status not in Member.Status.values:
        raise ValidationFailed(fields={"status": [_("Unknown status.")]})
    candidates = Member.objects.filter(pk__in=list(member_ids), merged_into__isnull=True).exclude(status=status)
    if status in STATUS_CHANGES_FROM:
        candidates = candidates.filter(status__in=STATUS_CHANGES_FROM[status])
    targets = list(candidates.select_for_update().order_by("pk").values_list("pk", "status"))
    if not targets:
        return 0
    now = timezone.now()
    Member.objects.filter(pk__in=[pk for pk, _old in targets]).update(
        status=status, updated_at=now, closed_at=now if status == Member.Status.CLOSED else None
    )
    MemberHistory.objects.bulk_create(
        MemberHistory(member_id=pk, action="status", changes={"status": [old, status], "reason": reason}, actor=actor)
        for pk, old in targets
    )
    return len(targets)


def tag_get_or_create(*, name: str) -> Tag:
    name = name.strip()
    if not name:
        raise ValidationFailed(fields={"tag": [_("A tag needs a name.")]})
    tag, _created = Tag.objects.get_or_create(name=name)
    return tag


@transaction.atomic
def members_tag(*, member_ids, tag: Tag, source: str = MemberTag.Source.STAFF, actor=None) -> int:
    """Add `tag` to the members; those that have it already are left as they are. Returns how many gained it."""
    member_ids = set(member_ids)
    have = set(MemberTag.objects.filter(tag=tag, member_id__in=member_ids).values_list("member_id", flat=True))
    new = sorted(member_ids - have)
    MemberTag.objects.bulk_create(
        [MemberTag(member_id=pk, tag=tag, source=source, created_by=actor) for pk in new], ignore_conflicts=True
    )
    MemberHistory.objects.bulk_create(
        MemberHistory(member_id=pk, action="tag_added", changes={"tag": tag.name}, actor=actor) for pk in new
    )
    return len(new)


@transaction.atomic
def members_untag(*, member_ids, tag: Tag, actor=None) -> int:
    member_ids = list(member_ids)
    had = list(MemberTag.objects.filter(tag=tag, member_id__in=member_ids).values_list("member_id", flat=True))
    MemberTag.objects.filter(tag=tag, member_id__in=had).delete()
    MemberHistory.objects.bulk_create(
        MemberHistory(member_id=pk, action="tag_removed", changes={"tag": tag.name}, actor=actor) for pk in had
    )
    return len(had)


@transaction.atomic
def identity_link(*, member: Member, channel: Channel, external_id: str, actor=None) -> ChannelIdentity:
    external_id = external_id.strip()
    if not external_id:
        raise ValidationFailed(fields={"external_id": [_("This field may not be blank.")]})
    existing = ChannelIdentity.objects.filter(channel=channel, external_id=external_id).select_related("member").first()
    if existing is not None:
        if existing.member_id == member.pk:
            return existing
        raise _duplicate_error(existing.member.member_no, "external_id")
    identity = ChannelIdentity.objects.create(member=member, channel=channel, external_id=external_id)
    _history(member, "identity_linked", changes={"channel": channel.code, "external_id": external_id}, actor=actor)
    return identity


# --- merge -----------------------------------------------------------------------------------------------------

_FILLABLE = ("birthday", "city", "country", "language")


@transaction.atomic
def members_merge(*, keep: Member, drop: Member, by=None) -> MemberMerge:
    """Move everything `drop` has to `keep`, close `drop` with a pointer to `keep`, and record it.

    Higher apps move their own rows (points, coupons, messages) through `events.member_merged`, in this transaction.
    """
    if keep.pk == drop.pk:
        raise MergeRefused(_("A member cannot be merged into itself."))
    locked = {m.pk: m for m in Member.objects.select_for_update().filter(pk__in=[keep.pk, drop.pk]).order_by("pk")}
    keep, drop = locked[keep.pk], locked[drop.pk]
    if drop.merged_into_id or keep.merged_into_id:
        raise MergeRefused(_("One of these members was already merged into another."))
    moved = {
        "identities": ChannelIdentity.objects.filter(member=drop).update(member=keep),
        "orders": Order.objects.filter(member=drop).update(member=keep),
        "events": Event.objects.filter(member=drop).update(member=keep),
        "notes": MemberNote.objects.filter(member=drop).update(member=keep),
        "referrals": Member.objects.filter(referrer=drop).exclude(pk=keep.pk).update(referrer=keep),
    }
    # Tags: move the ones `keep` lacks; the shared ones are already there.
    keep_tags = MemberTag.objects.filter(member=keep).values("tag_id")
    moved["tags"] = MemberTag.objects.filter(member=drop).exclude(tag_id__in=keep_tags).update(member=keep)
    MemberTag.objects.filter(member=drop).delete()
    # Consents: the most recent decision per message channel wins; the whole history moves.
    keep_consents = {consent.channel: consent for consent in Consent.objects.filter(member=keep)}
    for consent in Consent.objects.filter(member=drop):
        mine = keep_consents.get(consent.channel)
        if mine is None or consent.updated_at > mine.updated_at:
            Consent.objects.update_or_create(
                member=keep,
                channel=consent.channel,
                defaults={"granted": consent.granted, "source": consent.source, "updated_at": consent.updated_at},
            )
    Consent.objects.filter(member=drop).delete()
    moved["consent_changes"] = ConsentChange.objects.filter(member=drop).update(member=keep)
    # Profile: `keep` wins; its blanks are filled from `drop`. Contacts are freed from `drop` first (unique).
    contact = {"phone": drop.phone, "email": drop.email}
    fills = {}
    for field in _FILLABLE:
        if not getattr(keep, field) and getattr(drop, field):
            fills[field] = getattr(drop, field)
    if keep.gender == Member.Gender.UNKNOWN and drop.gender != Member.Gender.UNKNOWN:
        fills["gender"] = drop.gender
    if keep.referrer_id is None and drop.referrer_id not in (None, keep.pk):
        fills["referrer_id"] = drop.referrer_id
    drop.status = Member.Status.CLOSED
    drop.merged_into = keep
    drop.phone = drop.email = None
    drop.closed_at = drop.closed_at or timezone.now()
    drop.save(update_fields=["status", "merged_into", "phone", "email", "closed_at", "updated_at"])
    for field in ("phone", "email"):
        if not getattr(keep, field) and contact[field]:
            fills[field] = contact[field]
    fills["joined_at"] = min(keep.joined_at, drop.joined_at)
    fills["imported_spend"] = keep.imported_spend + drop.imported_spend
    for field, value in fills.items():
        setattr(keep, field, value)
    keep.save(update_fields=[*fills, "updated_at"])
    for result in events.member_merged.send(kept=keep, dropped=drop):
        moved.update(result or {})
    events.members_joined.send(member_ids=[keep.pk])
    merge = MemberMerge.objects.create(
        kept=keep,
        dropped=drop,
        merged_by=by,
        moved={**moved, "contact": contact},
        dropped_phone=contact["phone"],
        dropped_email=contact["email"],
    )
    _history(keep, "merged_in", changes={"from": drop.member_no, **moved}, actor=by)
    _history(drop, "merged_away", changes={"into": keep.member_no}, actor=by)
    return merge


# --- privacy: personal data export and erasure (PIPL, GDPR) ---------------------------------------------------

ERASED_NAME = "(erased)"
ERASURE_BATCH = 5000


def member_personal_data_exported(*, member: Member, actor=None, channel=None) -> None:
    """Record that someone took a copy of the member's personal data (who and when, on the member's history)."""
    _history(member, "personal_data_exported", actor=actor, channel=channel)


@transaction.atomic
def member_erase(*, member: Member, reason: str, actor=None, channel=None, source: str = "staff") -> Member:
    """Erase a member's personal data on their request: profile and identities anonymised, phone and e-mail freed
    (the person can join again), consents withdrawn, tags and the free text of events and history cleared. Orders,
    refunds, the points ledger and every figure stay, attached to the anonymised member number. Recorded with who
    and why. Erasing an erased member changes nothing."""
    reason = clean_text(reason or "")
    if not reason:
        raise ValidationFailed(
            fields={"reason": [_("Say why the member is erased (such as the request's reference).")]}
        )
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.erased_at is None:
        _members_erase(member_ids=[member.pk], reason=reason, source=source, actor=actor, channel=channel)
        member.refresh_from_db()
    return member


def members_erase_retained(*, now=None, days=None) -> int | None:
    """The retention rule: anonymise members closed more than MEMBER_RETENTION_DAYS days ago (None: the rule is off).

    Set-based, in batches of 5,000 members, each batch one transaction; running it again erases nothing twice."""
    from django.conf import settings

    days = settings.MEMBER_RETENTION_DAYS if days is None else days
    if days is None:
        return None
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    expired = Member.objects.filter(status=Member.Status.CLOSED, erased_at__isnull=True, closed_at__lt=cutoff)
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                expired.order_by("pk").select_for_update(skip_locked=True).values_list("pk", flat=True)[:ERASURE_BATCH]
            )
            if not ids:
                return total
            total += _members_erase(
                member_ids=ids, reason=f"retention: closed more than {days} days", source="retention"
            )


def _members_erase(*, member_ids, reason: str, source: str, actor=None, channel=None) -> int:
    """Erase the members given, and the members merged into them (whose rows still hold a name), set-based."""
    ids = set(member_ids)
    while True:  # merges chain: a member merged into one that was merged into another...
        more = set(Member.objects.filter(merged_into_id__in=ids, erased_at__isnull=True).values_list("pk", flat=True))
        if more <= ids:
            break
        ids |= more
    ids = sorted(ids)
    now = timezone.now()
    Member.objects.filter(pk__in=ids).update(
        name=ERASED_NAME,
        phone=None,
        email=None,
        gender=Member.Gender.UNKNOWN,
        birthday=None,
        city="",
        country="",
        language="",
        status=Member.Status.CLOSED,
        closed_at=Coalesce("closed_at", Value(now)),
        erased_at=now,
        updated_at=now,
    )
    ChannelIdentity.objects.filter(member_id__in=ids).delete()
    MemberTag.objects.filter(member_id__in=ids).delete()
    granted = list(Consent.objects.filter(member_id__in=ids, granted=True).values_list("member_id", "channel"))
    ConsentChange.objects.bulk_create(
        ConsentChange(member_id=pk, channel=kind, granted=False, source="erasure", changed_by=actor, created_at=now)
        for pk, kind in granted
    )
    Consent.objects.filter(member_id__in=ids, granted=True).update(granted=False, source="erasure", updated_at=now)
    # Free text that may name the person: event attributes, the before/after values of past changes, merge contacts.
    Event.objects.filter(member_id__in=ids).exclude(attributes={}).update(attributes={})
    MemberHistory.objects.filter(member_id__in=ids).exclude(changes={}).update(changes={})
    merges = list(MemberMerge.objects.filter(Q(kept_id__in=ids) | Q(dropped_id__in=ids)))
    for merge in merges:
        merge.moved = {key: value for key, value in merge.moved.items() if key != "contact"}
    MemberMerge.objects.bulk_update(merges, ["moved"])
    events.members_erased.send(member_ids=ids)
    MemberHistory.objects.bulk_create(
        MemberHistory(
            member_id=pk, action="erased", changes={"reason": reason, "source": source}, actor=actor, channel=channel
        )
        for pk in ids
    )
    return len(ids)


# --- orders, refunds, events: the facts loyalty and analytics read -----------------------------------------------


def _conflict(what):
    def message(existing):
        return _("%(what)s %(id)s was already received with a different payload.") % {"what": what, "id": existing}

    return message


_CENT = Decimal("0.01")
_json_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes for a string


def order_fingerprint(*, order_id, member_id, amount, currency, occurred_at, store, lines=()) -> str:
    """`payload_fingerprint` of an order. Without lines the canonical JSON is written straight (the order import
    computes it for every row of a file, where the generic walk over the payload would cost more than the rest)."""
    if lines:
        return payload_fingerprint(
            {
                "order_id": order_id,
                "member": member_id,
                "amount": amount,
                "currency": currency,
                "occurred_at": occurred_at,
                "store": store,
                "lines": list(lines),
            }
        )
    return order_fingerprint_of_text(
        order_id, member_id, f"{amount.quantize(_CENT):f}", currency, occurred_at.astimezone(dt.UTC).isoformat(), store
    )


def order_fingerprint_of_text(order_id, member_id, amount, currency, occurred_at, store) -> str:
    """order_fingerprint() of an order without lines, its amount given as text with two decimals and its time as
    UTC ISO text (the order import writes both for the COPY too, once per row)."""
    # Keys in sorted order and json.dumps' separators and string escaping (ensure_ascii=False), as above.
    text = (
        f'{{"amount": "{amount}", "currency": {_json_string(currency)}, "lines": [], '
        f'"member": {int(member_id)}, "occurred_at": "{occurred_at}", '
        f'"order_id": {_json_string(order_id)}, "store": {_json_string(store)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


def require_active(member):
    if member.status != Member.Status.ACTIVE:
        raise MemberNotActive(
            _("Member %(member_no)s is %(status)s and can neither earn nor redeem.")
            % {"member_no": member.member_no, "status": member.get_status_display()}
        )


@transaction.atomic
def order_record(
    *,
    channel: Channel,
    order_id: str,
    member: Member,
    amount: Decimal,
    occurred_at: dt.datetime,
    currency: str = "CNY",
    store: str = "",
    lines=(),
    award: bool = True,
) -> tuple[Order, bool]:
    """Record an order once per (channel, order_id). Returns (order, created); a replay returns the original.

    Loyalty earns through `events.order_recorded` in this transaction (unless `award` is off, for loaded history).
    """
    lines = [dict(line) for line in lines]
    fingerprint = order_fingerprint(
        order_id=order_id,
        member_id=member.pk,
        amount=amount,
        currency=currency,
        occurred_at=occurred_at,
        store=store,
        lines=lines,
    )
    if amount < 0:  # 0 is an order too (fully discounted, a free gift): it earns nothing
        raise ValidationFailed(fields={"amount": [_("An order amount cannot be negative.")]})
    if lines and sum((line["amount"] for line in lines), Decimal(0)) != amount:
        raise ValidationFailed(
            _("The lines add up to %(sum)s, not to the order amount %(amount)s.")
            % {"sum": sum((line["amount"] for line in lines), Decimal(0)), "amount": amount},
            fields={"lines": [_("The line amounts must add up to the order amount.")]},
        )
    require_active(member)
    order = Order(
        channel=channel,
        order_id=order_id,
        member=member,
        amount=amount,
        currency=currency,
        occurred_at=occurred_at,
        store=store,
        fingerprint=fingerprint,
    )
    # Insert-first keeps a new order to one statement; a replay (even a concurrent one, which waits for the first
    # to commit) finds the row and answers with the original.
    if not insert_unless_exists(order, unique_fields=["channel", "order_id"]):
        return replay(Order.objects.get(channel=channel, order_id=order_id), fingerprint, _conflict(_("Order")))
    if lines:
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                sku=line["sku"],
                name=line.get("name", ""),
                category=line.get("category", ""),
                quantity=line.get("quantity", 1),
                amount=line["amount"],
            )
            for line in lines
        )
    events.order_recorded.send(order=order, award=award)
    return order, True


@transaction.atomic
def refund_record(*, channel: Channel, order: Order, refund_id: str, amount: Decimal, lines=()) -> tuple[Refund, bool]:
    """Record a refund once per (channel, refund_id); refunds of one order never exceed its amount."""
    lines = [dict(line) for line in lines]
    fingerprint = payload_fingerprint({"order": order.pk, "refund_id": refund_id, "amount": amount, "lines": lines})
    replayed = replay_of(Refund.objects, fingerprint, _conflict(_("Refund")), channel=channel, refund_id=refund_id)
    if replayed:
        return replayed
    if amount <= 0:
        raise ValidationFailed(fields={"amount": [_("A refund amount must be more than 0.")]})
    order = Order.objects.select_for_update().get(pk=order.pk)
    # Re-check under the order's lock: a concurrent replay may have committed meanwhile.
    replayed = replay_of(Refund.objects, fingerprint, _conflict(_("Refund")), channel=channel, refund_id=refund_id)
    if replayed:
        return replayed
    if order.refunded_amount + amount > order.amount:
        raise RefundExceedsOrder(
            _("Order %(order)s is %(amount)s and %(refunded)s is refunded already; %(asked)s more is too much.")
            % {"order": order.order_id, "amount": order.amount, "refunded": order.refunded_amount, "asked": amount}
        )
    refund = Refund.objects.create(
        channel=channel,
        refund_id=refund_id,
        order=order,
        amount=amount,
        lines=canonical(lines),
        fingerprint=fingerprint,
    )
    order.refunded_amount += amount
    order.status = Order.Status.REFUNDED if order.refunded_amount == order.amount else Order.Status.PARTIALLY_REFUNDED
    order.save(update_fields=["refunded_amount", "status"])
    events.refund_recorded.send(refund=refund, order=order)
    return refund, True


@transaction.atomic
def event_record(
    *,
    channel: Channel,
    event_id: str,
    member: Member,
    type: str,
    occurred_at: dt.datetime,
    name: str = "",
    attributes: dict | None = None,
) -> tuple[Event, bool]:
    attributes = attributes or {}
    try:
        check_event_attributes(attributes)
    except ValueError as error:
        raise ValidationFailed(fields={"attributes": [str(error)]}) from None
    fingerprint = payload_fingerprint(
        {
            "event_id": event_id,
            "member": member.pk,
            "type": type,
            "name": name,
            "occurred_at": occurred_at,
            "attributes": attributes,
        }
    )
    replayed = replay_of(Event.objects, fingerprint, _conflict(_("Event")), channel=channel, event_id=event_id)
    if replayed:
        return replayed
    if type not in Event.Type.values:
        raise ValidationFailed(fields={"type": [_("Unknown event type.")]})
    if type == Event.Type.CUSTOM and not name:
        raise ValidationFailed(fields={"name": [_("A custom event needs a name.")]})
    require_active(member)
    try:
        with transaction.atomic():
            event = Event.objects.create(
                channel=channel,
                event_id=event_id,
                member=member,
                type=type,
                name=name,
                occurred_at=occurred_at,
                attributes=attributes,
                fingerprint=fingerprint,
            )
    except IntegrityError:
        return replay(Event.objects.get(channel=channel, event_id=event_id), fingerprint, _conflict(_("Event")))
    events.event_recorded.send(event=event)
    return event, True
