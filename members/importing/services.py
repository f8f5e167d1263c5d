"""The member import: match every cleaned row to one person (in the file and in the database) and write in bulk.

Rows are matched by phone, then e-mail, then channel identity — an upsert, never a second member for one person.
Rows that are the same person as an earlier row of the file join that row's member. Blank cells never erase data.
Matching is set-based (one query per batch of keys) and new members are written with COPY on PostgreSQL
(bulk_create elsewhere), so a 100,000-row file takes seconds.

Over 500 lines on purpose: matching, planning and the streamed COPY share one in-memory model of the file's
people, and splitting them would pass that model around for no reader's benefit.
"""

import contextlib
import gc
import io
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.core.files.base import ContentFile
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as KombuOperationalError
from psycopg.copy import QueuedLibpqWriter

from core.db import sequence_values
from members import events, extensions
from members.errors import ImportFailed
from members.models import ChannelIdentity, ImportJob, Member, MemberHistory, MemberTag, Tag
from members.selectors import channels_by_code_or_name
from members.services import member_numbers_allocate
from members.spreadsheets import csv_writer

from .engine import COLUMN_LABELS, Row, clean_rows, header_labels, read_table

logger = logging.getLogger(__name__)

BATCH = 5000
UPDATED_FIELDS = [
    "name",
    "phone",
    "email",
    "gender",
    "birthday",
    "city",
    "joined_at",
    "imported_spend",
    "join_channel_id",
]
MATCH_FIELDS = ["pk", "member_no", "status", "merged_into_id", *UPDATED_FIELDS]
PROFILE_FIELDS = ("name", "gender", "birthday", "city", "joined_at", "imported_spend", "join_channel_id")
STATUSES = ("new", "update", "unchanged", "error")
# The progress (percent) an import reports when its rows are read and cleaned, and when they are matched; writing
# takes it from there to 99.
PROGRESS_CLEANED, PROGRESS_MATCHED = 25, 45


@dataclass
class Outcome:
    row: Row
    status: str = "new"
    member_no: str = ""
    changes: dict = field(default_factory=dict)


@dataclass
class ImportResult:
    headers: list
    outcomes: list
    committed: bool = False
    dry_run: bool = False
    labels: dict = field(default_factory=dict)  # column -> the file's header

    @property
    def counts(self) -> dict:
        counts = {"new": 0, "updated": 0, "unchanged": 0, "errors": 0}
        names = {"new": "new", "update": "updated", "unchanged": "unchanged", "error": "errors"}
        for outcome in self.outcomes:
            counts[names[outcome.status]] += 1
        return counts

    @property
    def errors(self):
        return [outcome for outcome in self.outcomes if outcome.status == "error"]

    def errors_csv(self, language: str = "en") -> bytes:
        """The rejected rows as they were, with the row number and the reason, to fix and import again."""
        out = io.StringIO()
        writer = csv_writer(out)
        reason = "原因" if language.startswith("zh") else "reason"
        row_label = "行号" if language.startswith("zh") else "row"
        writer.writerow([*self.headers, row_label, reason])
        for outcome in self.errors:
            raw = list(outcome.row.raw) + [""] * (len(self.headers) - len(outcome.row.raw))
            writer.writerow(
                [*raw[: len(self.headers)], outcome.row.number, describe_errors(outcome.row, language, self.labels)]
            )
        return ("\ufeff" + out.getvalue()).encode("utf-8")  # with a BOM, so Excel opens it as UTF-8


def column_label(column: str, language: str = "en", labels: dict | None = None) -> str:
    """A column as the file names it (its own header), else in the operator's language."""
    return (labels or {}).get(column) or COLUMN_LABELS["zh" if language.startswith("zh") else "en"].get(column, column)


def describe_errors(row: Row, language: str = "en", labels: dict | None = None) -> str:
    return "; ".join(f"{column_label(column, language, labels)}: {message}" for column, message in row.errors)


class _Person:
    """The rows of the file that are one person, their merged values, and the member they are."""

    __slots__ = ("member", "rows", "values")

    def __init__(self, first: Row):
        self.rows = [first]
        self.values = first.values  # copied when a later row adds to it (most people have one row)
        self.member = None

    def absorb(self, row: Row) -> bool:
        """Fill blanks from a later row of the same person; True when it added anything."""
        if len(self.rows) == 1:
            self.values = dict(self.values)
        added = False
        for column, value in row.values.items():
            if column not in self.values or self.values[column] in ("", None):
                self.values[column] = value
                added = True
        self.rows.append(row)
        return added


def members_import(
    *,
    data: bytes,
    skip_errors: bool = False,
    dry_run: bool = False,
    actor=None,
    program_code: str | None = None,
    progress=None,
) -> ImportResult:
    """Import a customer list (CSV in UTF-8/GB18030 or XLSX). With errors and without `skip_errors`, nothing is
    written. `dry_run` does everything and rolls back (the preview). `progress(percent)` is called after each phase
    and each batch of members written (from inside the import's transaction: see `import_job_run`)."""
    with _cycle_collector_paused():
        return _import(
            data, skip_errors=skip_errors, dry_run=dry_run, actor=actor, program_code=program_code, progress=progress
        )


@contextlib.contextmanager
def _cycle_collector_paused():
    """An import makes a few objects per cell of the file, and Python's cycle collector would walk all of them again
    and again as they pile up (a third of the run time of a 100,000-row file). Reference counting still frees
    everything as usual; only cycles wait until the import ends."""
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not frozen:
                # What the import made goes to the oldest generation in one step (frozen, then unfrozen), where a
                # later full collection sees it as usual. Left young, it would all be walked by the next young
                # collection, as soon as the collector is back: about a second after a 200,000-row file.
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _import(data, *, skip_errors, dry_run, actor, program_code, progress):
    report = progress or (lambda percent: None)
    headers, table = read_table(data)
    rows = clean_rows(headers, table)
    report(PROGRESS_CLEANED)
    labels = header_labels(headers)
    result = ImportResult(headers=headers, outcomes=[Outcome(row=row) for row in rows], dry_run=dry_run, labels=labels)
    outcomes = {outcome.row.number: outcome for outcome in result.outcomes}
    _resolve_channels(rows)
    people, duplicate_added = _group_people(rows, labels)
    _match_existing(people)
    for person in people:
        _plan(person, outcomes, duplicate_added)
    _plan_tags(people, outcomes)
    _check_standing(people, outcomes, program_code)
    for outcome in result.outcomes:
        if outcome.row.errors:
            outcome.status = "error"
    report(PROGRESS_MATCHED)
    if result.errors and not skip_errors:
        return result
    good = [person for person in people if not any(row.errors for row in person.rows[:1])]

    def written(done, count):
        report(PROGRESS_MATCHED + (99 - PROGRESS_MATCHED) * done // max(count, 1))

    try:
        with transaction.atomic():
            _write(good, outcomes, actor=actor, program_code=program_code, progress=written)
            if dry_run:
                transaction.set_rollback(True)
            else:
                events.members_import_finished.send(counts=result.counts, actor=actor)
    except IntegrityError:
        raise ImportFailed(
            _("Another change to these members happened while importing; nothing was imported. Try again.")
        ) from None
    result.committed = not dry_run
    return result


def _resolve_channels(rows):
    channels = channels_by_code_or_name(row.values["channel"] for row in rows if row.values.get("channel"))
    for row in rows:
        name = row.values.pop("channel", None)
        if name is None:
            continue
        channel = channels.get(name)
        if channel is None:
            row.errors.append(
                ("channel", _("Unknown channel %(channel)s; create it under Channels first.") % {"channel": name})
            )
        else:
            row.values["join_channel_id"] = channel.pk
        if row.values.get("external_id") and channel is None:
            row.errors.append(("external_id", _("An external id needs a known channel in the same row.")))


def _identity(values):
    if values.get("external_id") and values.get("join_channel_id"):
        return (values["join_channel_id"], values["external_id"])
    return None


def _group_people(rows, labels):
    """One _Person per person in the file: a row joins an earlier one with the same phone, e-mail or identity."""
    people, duplicate_added = [], {}
    by_phone, by_email, by_identity = {}, {}, {}
    new_person = _Person
    for row in rows:
        if row.errors:
            continue
        values = row.values
        phone, email, identity = values.get("phone"), values.get("email"), _identity(values)
        found = [
            person
            for person in (
                phone and by_phone.get(phone),
                email and by_email.get(email),
                identity and by_identity.get(identity),
            )
            if person
        ]
        if not found:  # the common case: someone not seen before in this file
            person = new_person(row)
            people.append(person)
        elif any(other is not found[0] for other in found):
            first_rows = sorted({person.rows[0].number for person in found})
            row.errors.append(
                (
                    "phone",
                    _("This row's phone and e-mail belong to different people in rows %(rows)s.")
                    % {"rows": ", ".join(map(str, first_rows))},
                )
            )
            continue
        else:
            person = found[0]
            clash = next(
                (
                    column
                    for column in ("phone", "email")
                    if values.get(column) and person.values.get(column) not in (None, values[column])
                ),
                None,
            )
            if clash:
                row.errors.append(
                    (
                        clash,
                        _("Row %(row)s is the same person with another %(column)s.")
                        % {"row": person.rows[0].number, "column": column_label(clash, get_language() or "en", labels)},
                    )
                )
                continue
            duplicate_added[row.number] = person.absorb(row)
        if phone:
            by_phone[phone] = person
        if email:
            by_email[email] = person
        if identity:
            by_identity[identity] = person
    return people, duplicate_added


def _chunks(items, size=BATCH):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_keys(column, keys):
    """(key, member id) for the keys that belong to a member: one indexed query per batch of keys."""
    if connection.vendor == "postgresql":
        # One text parameter that the server splits into an array, instead of thousands of parameters (or an array
        # that the driver builds value by value): the query stays short and the index is used. Normalised phones
        # and e-mails hold no line breaks.
        with connection.cursor() as cursor:
            for chunk in _chunks(keys, 50_000):
                cursor.execute(
                    f"SELECT {column}, id FROM members_member WHERE {column} = ANY(string_to_array(%s, E'\\n'))",  # noqa: S608
                    ["\n".join(chunk)],
                )
                yield from cursor.fetchall()
        return
    for chunk in _chunks(keys, 500):
        yield from Member.objects.filter(**{f"{column}__in": chunk}).values_list(column, "pk")


def _match_existing(people):
    """Find each person's member: by phone, then e-mail, then channel identity; one query per batch of keys."""
    phones = {person.values["phone"] for person in people if person.values.get("phone")}
    emails = {person.values["email"] for person in people if person.values.get("email")}
    identities = {_identity(person.values) for person in people} - {None}
    by_phone, by_email, by_identity = {}, {}, {}
    found_ids = {}
    for column, keys, found in (("phone", phones, by_phone), ("email", emails, by_email)):
        for key, pk in _existing_keys(column, keys):
            found[key] = pk
            found_ids[pk] = None
    # The members that rows match, as light records (a re-import matches every row, and model instances for
    # 100,000 members would cost more than the rest of the matching).
    for chunk in _chunks(found_ids):
        for values in Member.objects.filter(pk__in=chunk).values(*MATCH_FIELDS):
            found_ids[values["pk"]] = SimpleNamespace(**values)
    by_phone = {key: found_ids[pk] for key, pk in by_phone.items()}
    by_email = {key: found_ids[pk] for key, pk in by_email.items()}
    for chunk in _chunks(identities):
        condition = Q()
        for channel_id, external_id in chunk:
            condition |= Q(channel_id=channel_id, external_id=external_id)
        for identity in ChannelIdentity.objects.filter(condition).select_related("member"):
            by_identity[(identity.channel_id, identity.external_id)] = identity.member
    for person in people:
        values = person.values
        candidates = [
            ("phone", by_phone.get(values.get("phone"))),
            ("email", by_email.get(values.get("email"))),
            ("external_id", by_identity.get(_identity(values))),
        ]
        found = [(column, member) for column, member in candidates if member is not None]
        distinct = {member.pk for _column, member in found}
        if len(distinct) > 1:
            numbers = ", ".join(sorted({member.member_no for _column, member in found}))
            for row in person.rows:
                row.errors.append(
                    (
                        found[1][0],
                        _("Matches two different members (%(numbers)s); merge them first.") % {"numbers": numbers},
                    )
                )
            continue
        if found:
            person.member = found[0][1]
            if person.member.merged_into_id or person.member.status == Member.Status.CLOSED:
                for row in person.rows:
                    row.errors.append(
                        (found[0][0], _("Belongs to closed member %(number)s.") % {"number": person.member.member_no})
                    )


def _target_values(values):
    target = {
        column: values[column] for column in ("name", "gender", "birthday", "city", "joined_at") if column in values
    }
    if "total_spend" in values:
        target["imported_spend"] = values["total_spend"]
    if "join_channel_id" in values:
        target["join_channel_id"] = values["join_channel_id"]
    for column in ("phone", "email"):
        if values.get(column):
            target[column] = values[column]
    return target


def _plan(person, outcomes, duplicate_added):
    """Each row's status: new, update, unchanged (or error), and for updates what changes."""
    if any(row.errors for row in person.rows[:1]):
        return
    first = outcomes[person.rows[0].number]
    if person.member is None:
        first.status = "new"
    else:
        member = person.member
        changes = {}
        for column, value in _target_values(person.values).items():
            if column == "gender" and value == Member.Gender.UNKNOWN:
                continue
            if column == "join_channel_id" and member.join_channel_id:
                continue  # where a member first joined does not change
            if getattr(member, column) != value:
                changes[column] = [str(getattr(member, column)), str(value)]
        first.status = "update" if changes else "unchanged"
        first.changes = changes
        first.member_no = member.member_no
    for row in person.rows[1:]:
        outcomes[row.number].status = "update" if duplicate_added.get(row.number) else "unchanged"
        outcomes[row.number].member_no = first.member_no


def _plan_tags(people, outcomes):
    """A known member's row that adds tags they lack is an update (one query per batch of members)."""
    tagged = [person for person in people if person.member is not None and person.values.get("tags")]
    have = set()
    for chunk in _chunks(tagged):
        names = {name for person in chunk for name in person.values["tags"]}
        have.update(
            MemberTag.objects.filter(
                member_id__in=[person.member.pk for person in chunk], tag__name__in=names
            ).values_list("member_id", "tag__name")
        )
    for person in tagged:
        added = [name for name in person.values["tags"] if (person.member.pk, name) not in have]
        outcome = outcomes[person.rows[0].number]
        if added and outcome.status != "error":
            outcome.changes["tags"] = ["", ", ".join(added)]
            outcome.status = "update"


def _check_standing(people, outcomes, program_code):
    """Points and tiers from the previous system, checked before anything is written: a tier given by its code or
    its name is matched (else that row is an error); a known member's row that brings points or a tier is an
    update. Loyalty answers through `extensions.members_import_checked`."""
    rows = [
        {
            "row": person.rows[0].number,
            "member_id": person.member.pk if person.member is not None else None,
            "points_balance": person.values.get("points_balance") or 0,
            "tier": person.values.get("tier", ""),
        }
        for person in people
        if outcomes[person.rows[0].number].status != "error"
        and (person.values.get("points_balance") or person.values.get("tier"))
    ]
    if not rows:
        return
    by_row = {person.rows[0].number: person for person in people}
    for answer in extensions.members_import_checked.collect(program_code=program_code, rows=rows):
        person, outcome = by_row[answer["row"]], outcomes[answer["row"]]
        if "error" in answer:
            for row in person.rows:
                row.errors.append(answer["error"])
                outcomes[row.number].status = "error"
            continue
        if answer.get("tier"):
            person.values["tier"] = answer["tier"]
        for column in answer.get("changes", []):
            outcome.changes[column] = ["", str(person.values.get(column, ""))]
            if outcome.status == "unchanged":
                outcome.status = "update"


def _write(people, outcomes, *, actor, program_code, progress):
    now = timezone.now()
    new = [person for person in people if person.member is None]
    changed = [
        person
        for person in people
        if person.member is not None and set(outcomes[person.rows[0].number].changes) & set(UPDATED_FIELDS)
    ]
    _insert_members(new, now, progress=progress)
    for person in new:
        for row in person.rows:
            outcomes[row.number].member_no = person.member.member_no
    updates = []
    for person in changed:
        member = Member(pk=person.member.pk, updated_at=now)
        for column in UPDATED_FIELDS:
            setattr(member, column, getattr(person.member, column))
        for column, value in _target_values(person.values).items():
            if column in outcomes[person.rows[0].number].changes:
                setattr(member, column, value)
        updates.append(member)
    Member.objects.bulk_update(updates, [*UPDATED_FIELDS, "updated_at"], batch_size=1000)
    _write_identities(people)
    _write_tags(people, actor)
    touched = [person for person in people if outcomes[person.rows[0].number].status == "update"]
    _write_history(new, touched, outcomes, actor=actor, now=now)
    events.members_joined.send(member_ids=[person.member.pk for person in people], program_code=program_code)
    opening = [
        {
            "member_id": person.member.pk,
            "points_balance": person.values.get("points_balance") or 0,
            "tier": person.values.get("tier", ""),
            "row": person.rows[0].number,
        }
        for person in people
        if person.values.get("points_balance") or person.values.get("tier")
    ]
    if opening:
        errors = [
            error
            for found in events.members_imported.send(program_code=program_code, rows=opening, actor=actor)
            for error in found or []
        ]
        if errors:
            for error in errors:
                outcome = outcomes.get(error.get("row"))
                if outcome is not None:
                    outcome.row.errors.append((error.get("column", "points_balance"), error["message"]))
                    outcome.status = "error"
            raise ImportFailed(errors[0]["message"])


class _Written:
    """A member the import has just written: what the rest of the import needs of it."""

    __slots__ = ("member_no", "pk")

    def __init__(self, pk, member_no):
        self.pk, self.member_no = pk, member_no


# The columns of a new member, in the order of the tuples `_insert_members` builds.
NEW_MEMBER_COLUMNS = (
    "id",
    "member_no",
    "name",
    "phone",
    "email",
    "gender",
    "birthday",
    "city",
    "joined_at",
    "join_channel_id",
    "imported_spend",
    "country",
    "language",
    "status",
    "created_at",
    "updated_at",
)


def _insert_members(new, now, *, progress):
    """Write the new members and set each person's `member`. On PostgreSQL one COPY streamed from a worker thread
    (the rows are formatted here while the server stores the previous ones); bulk_create elsewhere."""
    if not new:
        return
    numbers = member_numbers_allocate(count=len(new))
    unknown, active = Member.Gender.UNKNOWN, Member.Status.ACTIVE
    records = [
        (
            number,
            values["name"],
            values.get("phone"),
            values.get("email"),
            values.get("gender", unknown),
            values.get("birthday"),
            values.get("city", ""),
            values.get("joined_at", now),
            values.get("join_channel_id"),
            values.get("total_spend", 0),
        )
        for number, values in zip(numbers, (person.values for person in new), strict=True)
    ]
    if connection.vendor == "postgresql":
        ids = sequence_values(len(records), serial_of=Member._meta.db_table)
        tail = ("", "", active, now, now)
        columns = ", ".join(NEW_MEMBER_COLUMNS)
        # The driver's own cursor does the COPY, so its errors (a phone taken meanwhile) are turned into Django's
        # (IntegrityError) here, as the ORM would.
        with (
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f"COPY members_member ({columns}) FROM STDIN",
                writer=QueuedLibpqWriter(cursor.cursor),
            ) as copy,
        ):
            for start in range(0, len(records), BATCH):
                for pk, record in zip(ids[start : start + BATCH], records[start : start + BATCH], strict=True):
                    copy.write_row((pk, *record, *tail))
                progress(min(start + BATCH, len(records)), len(records))
    else:
        objects = [
            Member(
                member_no=number,
                name=name,
                phone=phone,
                email=email,
                gender=gender,
                birthday=birthday,
                city=city,
                joined_at=joined_at,
                join_channel_id=join_channel_id,
                imported_spend=spend,
                created_at=now,
                updated_at=now,
            )
            for number, name, phone, email, gender, birthday, city, joined_at, join_channel_id, spend in records
        ]
        for start in range(0, len(objects), BATCH):
            Member.objects.bulk_create(objects[start : start + BATCH], batch_size=1000)
            progress(min(start + BATCH, len(objects)), len(objects))
        ids = [obj.pk for obj in objects]
    for person, pk, record in zip(new, ids, records, strict=True):
        person.member = _Written(pk, record[0])


def _write_history(new, changed, outcomes, *, actor, now):
    """One "imported" history row per member written: the file's row for a new member, the changes for another."""
    actor_id = actor.pk if actor is not None else None
    rows = [
        MemberHistory(
            member_id=person.member.pk,
            action="imported",
            actor_id=actor_id,
            changes=outcomes[person.rows[0].number].changes,
            created_at=now,
        )
        for person in changed
    ]
    if connection.vendor == "postgresql" and new:
        # One statement for the (many) new members: the server builds the rows from two arrays.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO members_memberhistory (member_id, action, changes, actor_id, created_at) "
                "SELECT m::bigint, 'imported', jsonb_build_object('row', r::integer), %s, %s "
                "FROM unnest(string_to_array(%s, ','), string_to_array(%s, ',')) AS t(m, r)",
                [
                    actor_id,
                    now,
                    ",".join(str(person.member.pk) for person in new),
                    ",".join(str(person.rows[0].number) for person in new),
                ],
            )
    else:
        rows += [
            MemberHistory(
                member_id=person.member.pk,
                action="imported",
                actor_id=actor_id,
                changes={"row": person.rows[0].number},
                created_at=now,
            )
            for person in new
        ]
    MemberHistory.objects.bulk_create(rows, batch_size=1000)


def _write_identities(people):
    wanted = [person for person in people if _identity(person.values)]
    existing = set(
        ChannelIdentity.objects.filter(member_id__in=[person.member.pk for person in wanted]).values_list(
            "channel_id", "external_id"
        )
    )
    ChannelIdentity.objects.bulk_create(
        [
            ChannelIdentity(member_id=person.member.pk, channel_id=channel_id, external_id=external_id)
            for person in wanted
            for channel_id, external_id in [_identity(person.values)]
            if (channel_id, external_id) not in existing
        ],
        batch_size=BATCH,
    )


def _write_tags(people, actor):
    names = {name for person in people for name in person.values.get("tags", [])}
    if not names:
        return
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    tags = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    MemberTag.objects.bulk_create(
        [
            MemberTag(member_id=person.member.pk, tag_id=tags[name], source=MemberTag.Source.IMPORT, created_by=actor)
            for person in people
            for name in person.values.get("tags", [])
        ],
        ignore_conflicts=True,
        batch_size=BATCH,
    )


# --- import jobs (the admin's imports, run by Celery) ---------------------------------------------------------------

PREVIEW_ROWS_PER_STATUS = 200


@transaction.atomic
def import_job_create(
    *,
    upload,
    dry_run: bool,
    skip_errors: bool,
    actor=None,
    source: ImportJob | None = None,
    kind: str = ImportJob.Kind.MEMBERS,
):
    """Keep the uploaded file (or the previewed one, `source`) and queue its import (members or order history)."""
    job = ImportJob(
        kind=source.kind if source else kind,
        original_name=source.original_name if source else upload.name,
        dry_run=dry_run,
        skip_errors=skip_errors,
        created_by=actor,
    )
    if source is not None:
        job.file.name = source.file.name
    else:
        job.file.save(upload.name, upload, save=False)
    job.save()
    transaction.on_commit(lambda: _queue(job.pk))
    return job


def _queue(job_id: int) -> None:
    """Hand the job to the workers. A broker that does not answer fails the job with what to do, rather than leave
    it "pending" with no worker ever to run it."""
    from members.tasks import run_import_job

    try:
        run_import_job.delay(job_id)
    except KombuOperationalError:
        logger.exception("import job %s: the task queue is not reachable", job_id)
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
            status=ImportJob.Status.FAILED,
            message=_(
                "The task queue is not reachable, so the import could not start; nothing was imported. Start the "
                "worker and its broker (Redis) and upload the file again."
            ),
            finished_at=timezone.now(),
        )


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued job once (a second delivery of the task finds it taken and does nothing)."""
    taken = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(status=ImportJob.Status.RUNNING)
    job = ImportJob.objects.get(pk=job_id)
    if not taken:
        return job

    progress, close = _progress_reporter(job_id)
    try:
        with job.file.open("rb") as handle:
            data = handle.read()
        if job.kind == ImportJob.Kind.ORDERS:
            from .orders import orders_import  # the order engine builds on this module's look-ups

            result = orders_import(data=data, dry_run=job.dry_run, progress=progress)
        else:
            result = members_import(
                data=data, skip_errors=job.skip_errors, dry_run=job.dry_run, actor=job.created_by, progress=progress
            )
    except ImportFailed as error:
        job.status, job.message = ImportJob.Status.FAILED, error.message
    except Exception:
        # Not left "running" for ever: the operator sees that it failed (the worker's log has the traceback).
        job.status, job.message = (
            ImportJob.Status.FAILED,
            _("The import stopped on an unexpected error; nothing was imported."),
        )
        job.finished_at = timezone.now()
        job.save()
        raise
    else:
        job.status = ImportJob.Status.DONE
        job.counts = result.counts
        job.preview = _order_preview(result) if job.kind == ImportJob.Kind.ORDERS else _preview(result)
        if result.errors:
            job.error_file.save(
                f"rejected-{job.pk}.csv", ContentFile(result.errors_csv(get_language() or "en")), save=False
            )
        if result.errors and not job.skip_errors:
            job.message = _("Nothing was imported: %(count)d rows have errors.") % {"count": len(result.errors)}
        elif job.dry_run:
            job.message = _("Preview only: nothing was written.")
        else:
            job.message = _("Imported.")
    finally:
        close()
    job.progress = 100
    job.finished_at = timezone.now()
    job.save()
    return job


def _progress_reporter(job_id):
    """`progress(percent)` for a job, and a `close()`. The import writes in one transaction, and a progress bar
    that only moves at commit is no progress bar: on PostgreSQL the percentage goes through a second connection of
    its own (autocommit), so the admin page sees it while the import runs."""
    if connection.vendor != "postgresql":

        def progress(percent):
            ImportJob.objects.filter(pk=job_id).update(progress=percent)

        return progress, lambda: None
    side = connections.create_connection(DEFAULT_DB_ALIAS)

    def progress(percent):
        with side.cursor() as cursor:
            cursor.execute("UPDATE members_importjob SET progress = %s WHERE id = %s", [percent, job_id])

    return progress, side.close


def _order_preview(result) -> list:
    """Every error and the first rows of each other status, with the order and member as the file gives them."""
    shown, preview = {}, []
    for row in result.rows:
        seen = shown.get(row.status, 0)
        if row.status != "error" and seen >= PREVIEW_ROWS_PER_STATUS:
            continue
        shown[row.status] = seen + 1
        preview.append(
            {
                "row": row.number,
                "status": row.status,
                "order_id": row.values.get("order_id", ""),
                "member": row.values.get("member", ""),
                "message": result.describe(row) if row.status == "error" else "",
            }
        )
    return preview


def _preview(result) -> list:
    shown, preview = {}, []
    language = get_language() or "en"
    for outcome in result.outcomes:
        seen = shown.get(outcome.status, 0)
        if outcome.status != "error" and seen >= PREVIEW_ROWS_PER_STATUS:
            continue
        shown[outcome.status] = seen + 1
        preview.append(
            {
                "row": outcome.row.number,
                "status": outcome.status,
                "member_no": outcome.member_no,
                "name": outcome.row.values.get("name", ""),
                "phone": outcome.row.values.get("phone") or "",
                "message": describe_errors(outcome.row, language, result.labels)
                if outcome.status == "error"
                else ", ".join(column_label(column, language, result.labels) for column in outcome.changes),
            }
        )
    return preview
