"""Loading order history from a previous system: a django-import-export resource for the admin's import, with
its preview (every row new, unchanged, or an error with its reason), through the same service as the partner API.

An order is a fact: a row whose (channel, order_id) is recorded already is *unchanged* when it says the same and an
error when it says something else; an import never edits an order. History earns no points (balances come over
as opening balances with the member import), but it counts for tiers like any order.

Over 500 lines: the admin's small-file preview (django-import-export) and the set-based engine for large files
(cleaning, matching, COPY) apply one set of rules and messages, kept side by side so that they cannot drift.
"""

import contextlib
import csv
import datetime as dt
import functools
import io
import itertools
import operator
import re
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import tablib
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets
from import_export.formats.base_formats import CSV, XLSX

from core.db import jit_off, sequence_values, session_settings
from core.errors import DomainError
from members import events, services
from members.errors import ImportFailed
from members.models import Member, Order
from members.normalize import PLAUSIBLE_YEARS, normalize_phone, parse_datetime, parse_money
from members.selectors import channels_by_code_or_name

from .engine import _email as clean_email
from .engine import read_table
from .services import _cycle_collector_paused, _existing_keys

# Canonical column -> the headers operators write (compared case-insensitively, spaces ignored).
ORDER_HEADERS = {
    "channel": ["channel", "渠道", "销售渠道"],
    "order_id": ["order_id", "order", "订单号", "订单编号"],
    "member": ["member", "member_no", "phone", "email", "会员", "会员编号", "手机号", "邮箱"],
    "amount": ["amount", "金额", "订单金额", "实付金额"],
    "currency": ["currency", "币种"],
    "occurred_at": ["occurred_at", "order_time", "下单时间", "订单时间"],
    "store": ["store", "门店"],
}
# The columns a file must have, with the Chinese header named in the message when one is missing.
REQUIRED = {"channel": "渠道", "order_id": "订单号", "member": "会员编号", "amount": "金额", "occurred_at": "下单时间"}
_HEADER_LOOKUP = {re.sub(r"\s+", "", name).lower(): column for column, names in ORDER_HEADERS.items() for name in names}
COMPARED = ("member_id", "amount", "currency", "occurred_at", "store")


class _SpreadsheetMixin:
    """Files read as the member import reads them: UTF-8 (with or without BOM), GB18030 or XLSX."""

    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, str):
            in_stream = in_stream.encode("utf-8")
        headers, table = read_table(in_stream)
        width = len(headers)
        return tablib.Dataset(*[(list(row) + [""] * width)[:width] for row in table], headers=headers)


class HistoryCSV(_SpreadsheetMixin, CSV):
    pass


class HistoryXLSX(_SpreadsheetMixin, XLSX):
    pass


class ChannelWidget(widgets.Widget):
    """A channel by its code or its name (`prefetch()` looks up a whole file's channels in one query)."""

    def __init__(self):
        super().__init__()
        self._found = {}

    def prefetch(self, texts):
        self._found.update(channels_by_code_or_name({str(text or "").strip() for text in texts} - {""}))

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            raise ValueError(_("A channel is required (its code or name)."))
        if text not in self._found:
            self.prefetch([text])
        if text not in self._found:
            raise ValueError(_("Unknown channel %(channel)s; create it under Channels first.") % {"channel": text})
        return self._found[text]

    def render(self, value, obj=None, **kwargs):
        return value.code if value else ""


class MemberWidget(widgets.Widget):
    """A member by member number, phone (any spelling) or e-mail; a merged-away member's orders go to the member
    kept. `prefetch()` looks up a whole file's members in a few queries."""

    def __init__(self):
        super().__init__()
        self._found = {}

    def prefetch(self, texts):
        """The members of these texts, as the engine finds them (members_by_reference), as model instances."""
        wanted = {str(text or "").strip() for text in texts} - {""} - set(self._found)
        holders = members_by_reference(wanted)
        members = Member.objects.in_bulk({holder for holder, _standing in holders.values()})
        self._found.update({text: members[holder] for text, (holder, _standing) in holders.items()})

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            raise ValueError(_("A member is required (member number, phone or e-mail)."))
        if text not in self._found:
            self.prefetch([text])
        member = self._found.get(text)
        if member is None:
            raise ValueError(_("No member with the number, phone or e-mail %(member)s.") % {"member": text})
        return member

    def render(self, value, obj=None, **kwargs):
        return value.member_no if value else ""


class MoneyWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        return parse_money(str(value or "").strip())

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class TimeWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            raise ValueError(_("An order time is required, such as 2024-05-07 10:15:00."))
        return parse_datetime(text, tz=timezone.get_default_timezone())

    def render(self, value, obj=None, **kwargs):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


class OrderHistoryResource(resources.ModelResource):
    channel = fields.Field(attribute="channel", column_name="channel", widget=ChannelWidget())
    order_id = fields.Field(attribute="order_id", column_name="order_id")
    member = fields.Field(attribute="member", column_name="member", widget=MemberWidget())
    amount = fields.Field(attribute="amount", column_name="amount", widget=MoneyWidget())
    currency = fields.Field(attribute="currency", column_name="currency")
    occurred_at = fields.Field(attribute="occurred_at", column_name="occurred_at", widget=TimeWidget())
    store = fields.Field(attribute="store", column_name="store")

    class Meta:
        model = Order
        fields = ("channel", "order_id", "member", "amount", "currency", "occurred_at", "store")
        import_id_fields = ("channel", "order_id")
        skip_unchanged = True
        report_skipped = True

    def __init__(self, row_limit=None, **kwargs):
        super().__init__(**kwargs)
        self.row_limit = row_limit  # the admin's cap: its preview runs inside the web request

    @classmethod
    def get_display_name(cls):
        return _("Order history")

    def before_import(self, dataset, **kwargs):
        """English or Chinese headers; columns this import does not know are left alone."""
        missing = []
        headers = [_HEADER_LOOKUP.get(re.sub(r"\s+", "", str(header)).lower(), header) for header in dataset.headers]
        for column in REQUIRED:
            if column not in headers:
                missing.append(f"{column}/{REQUIRED[column]}")
        if missing:
            raise ValidationError(_("The file needs these columns: %(columns)s.") % {"columns": ", ".join(missing)})
        if self.row_limit and len(dataset) > self.row_limit:
            raise ValidationError(
                _(
                    "This file has %(rows)d orders; the admin takes up to %(limit)d at a time. Split the file, or "
                    "load it with the import_orders command."
                )
                % {"rows": len(dataset), "limit": self.row_limit}
            )
        dataset.headers = headers
        # The file's channels, members and already recorded orders in a few queries, not one per row.
        self.fields["channel"].widget.prefetch(dataset["channel"])
        self.fields["member"].widget.prefetch(dataset["member"])
        channels = {}
        for text, order_id in zip(dataset["channel"], dataset["order_id"], strict=True):
            try:
                channel = self.fields["channel"].widget.clean(text)
            except ValueError:
                continue
            channels.setdefault(channel.pk, set()).add(str(order_id or "").strip())
        self._recorded_orders = {}
        for channel_id, order_ids in channels.items():
            for order in Order.objects.filter(channel_id=channel_id, order_id__in=order_ids):
                self._recorded_orders[(channel_id, order.order_id)] = order

    def get_instance(self, instance_loader, row):
        # A row with an unknown channel is reported on its channel cell (by import_instance), not as a crash.
        try:
            channel = self.fields["channel"].clean(row)
        except ValueError:
            return None
        return self._recorded_orders.get((channel.pk, str(row.get("order_id") or "").strip()))

    def after_init_instance(self, instance, new, row, **kwargs):
        self._recorded = None if new else {name: getattr(instance, name) for name in COMPARED}

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        if not (instance.order_id or "").strip():
            raise ValidationError({"order_id": _("An order id is required.")})
        instance.currency = (instance.currency or "CNY").strip().upper()
        instance.store = (instance.store or "").strip()
        if self._recorded is not None:
            changed = [name for name in COMPARED if getattr(instance, name) != self._recorded[name]]
            if changed:
                raise ValidationError(
                    _("Order %(order)s is recorded already with another %(fields)s; an import does not change orders.")
                    % {
                        "order": instance.order_id,
                        "fields": ", ".join(
                            str(Order._meta.get_field(name.removesuffix("_id")).verbose_name) for name in changed
                        ),
                    }
                )

    def do_instance_save(self, instance, is_create):
        """New orders go through the service (idempotent per channel and order id, the loyalty hook for tiers);
        history earns no points."""
        try:
            order, _created = services.order_record(
                channel=instance.channel,
                order_id=instance.order_id,
                member=instance.member,
                amount=instance.amount,
                occurred_at=instance.occurred_at,
                currency=instance.currency,
                store=instance.store,
                award=False,
            )
        except DomainError as error:
            raise ValidationError(error.fields or error.message) from None
        instance.pk = order.pk


# --- the set-based engine (the command and the admin's jobs) --------------------------------------------------------
#
# The same rules as the resource above, for a whole file at once: every row cleaned in one pass, the file's channels,
# members and already recorded orders looked up in a few queries, the new orders written with COPY on PostgreSQL
# (bulk_create elsewhere) and handed to loyalty in one call for their tiers, instead of one service call per row.

_COPY_COLUMNS = (
    "id",
    "channel_id",
    "order_id",
    "member_id",
    "store",
    "amount",
    "refunded_amount",
    "currency",
    "occurred_at",
    "status",
    "fingerprint",
    "created_at",
)
# The progress (percent) of a file's rows when they are cleaned and when they are matched; writing takes them to 95.
PROGRESS_CLEANED, PROGRESS_MATCHED = 20, 40
BATCH = 5000
# Files larger than this go in chunks of CHUNK_ROWS through a pipeline, with two worker threads on connections of
# their own (PostgreSQL, outside any transaction of the caller; see orders_import and _Beside).
PIPELINE_ROWS = 25_000
CHUNK_ROWS = 20_000


@dataclass(slots=True)
class HistoryRow:
    """One data row of the file: its spreadsheet number (header = 1), its cleaned values, status and errors."""

    number: int
    raw: list
    values: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)  # [(column, message)], column canonical
    status: str = "new"  # new, unchanged or error


@dataclass
class HistoryResult:
    headers: list
    labels: dict  # canonical column -> the header the file uses for it
    rows: list
    committed: bool = False
    dry_run: bool = False

    @property
    def counts(self) -> dict:
        counts = {"new": 0, "unchanged": 0, "errors": 0}
        for row in self.rows:
            counts["errors" if row.status == "error" else row.status] += 1
        return counts

    @property
    def errors(self):
        return [row for row in self.rows if row.status == "error"]

    def describe(self, row) -> str:
        """`column: reason; …` with the columns named as the file names them."""
        return "; ".join(f"{self.labels.get(column, column)}: {message}" for column, message in row.errors)

    def errors_csv(self, language: str = "en") -> bytes:
        """The rejected rows as they were, with the row number and the reason, to fix and import again."""
        out = io.StringIO()
        writer = csv.writer(out)
        zh = language.startswith("zh")
        writer.writerow([*self.headers, "行号" if zh else "row", "原因" if zh else "reason"])
        width = len(self.headers)
        for row in self.errors:
            writer.writerow([*(list(row.raw) + [""] * width)[:width], row.number, self.describe(row)])
        return ("\ufeff" + out.getvalue()).encode("utf-8")  # with a BOM, so Excel opens it as UTF-8


def history_columns(headers) -> dict[int, str]:
    """Column index -> canonical column (English or Chinese headers); a file without the needed columns is refused
    with the message the admin's preview gives."""
    mapping = {}
    for index, header in enumerate(headers):
        column = _HEADER_LOOKUP.get(re.sub(r"\s+", "", str(header)).lower())
        if column and column not in mapping.values():
            mapping[index] = column
    missing = [f"{column}/{REQUIRED[column]}" for column in REQUIRED if column not in mapping.values()]
    if missing:
        raise ImportFailed(_("The file needs these columns: %(columns)s.") % {"columns": ", ".join(missing)})
    return mapping


def orders_import(*, data: bytes, dry_run: bool = False, progress=None) -> HistoryResult:
    """Load order history (CSV in UTF-8/GB18030 or XLSX): new orders are recorded without points and count for
    tiers, rows that say what is recorded already are unchanged, anything else is refused. With any error nothing is
    written; `dry_run` checks everything and writes nothing. `progress(percent)` is called as the rows are cleaned,
    matched and written (while the orders are stored, so it must not use the default connection)."""
    report = progress or (lambda percent: None)
    with _cycle_collector_paused(), jit_off():
        headers, table = read_table(data)
        mapping = history_columns(headers)
        labels = {column: headers[index] for index, column in mapping.items()}
        result = HistoryResult(headers=headers, labels=labels, rows=[], dry_run=dry_run)
        # A large file on PostgreSQL, outside any transaction of the caller, goes through in chunks, as a pipeline: a
        # worker thread on its own connection (_Beside) looks the next chunk up while this one is cleaned and decided
        # here, and the server stores each chunk's new orders through this connection's COPY while the next chunk is
        # decided.
        # Once a row is refused nothing more is written and what was is rolled back; the rest is still checked, so
        # that every error is reported. Other files are one chunk, looked up on this connection.
        beside = (
            _Beside(draw_ids=not dry_run)
            if connection.vendor == "postgresql" and not connection.in_atomic_block and len(table) > PIPELINE_ROWS
            else None
        )
        size = CHUNK_ROWS if beside else max(len(table), 1)
        chunks = [(start, table[start : start + size]) for start in range(0, len(table), size)]
        cleaners = _cleaners()  # their caches serve the whole file
        in_file = {}  # the new orders of the file so far: a later row naming one again is compared with it
        failed = False
        try:
            with beside or contextlib.nullcontext(), _Writer(beside) as writer:
                for (start, chunk), looking in zip(chunks, _ahead(beside, mapping, chunks), strict=True):

                    def at(phase, start=start, chunk=chunk):
                        report(int((95 * start + len(chunk) * phase) // len(table)))

                    rows = _clean(mapping, chunk, first=start + 2, cleaners=cleaners)
                    at(PROGRESS_CLEANED)
                    channel_ids, members, fingerprints, ids = looking.result() if looking else (None, None, None, None)
                    _match_channels(rows, channel_ids)
                    _match_members(rows, members)
                    new = _plan(rows, fingerprints=fingerprints, in_file=in_file, beside=beside)
                    for row in rows:
                        if row.errors:
                            row.status, failed = "error", True
                    result.rows.extend(rows)
                    at(PROGRESS_MATCHED)
                    if not (failed or dry_run):
                        writer.write(
                            new, ids, lambda done, at=at: at(PROGRESS_MATCHED + (95 - PROGRESS_MATCHED) * done)
                        )
                if failed or dry_run or not writer.records:
                    raise _Abandoned
        except _Abandoned:
            return result
        except IntegrityError:
            raise ImportFailed(
                _("Another change to these orders happened while importing; nothing was imported. Try again.")
            ) from None
        result.committed = True
        return result


class _Abandoned(Exception):
    """Not an error: raised in the import's transaction to roll back what was written, once a row is refused."""


def _ahead(beside, mapping, chunks):
    """Each chunk's look-ups (a future of _lookups() on a worker thread's connection), the next chunk's asked for
    before this one's is given; None for each chunk without a worker (the chunk is looked up on this connection)."""
    if beside is None:
        yield from (None for _chunk in chunks)
        return
    # The members of the first chunk with its look-ups; those of the whole rest of the file at the same time, on the
    # reading thread (idle until the first chunk is stored), which later chunks' look-ups wait for: two look-ups of the
    # members table per file, whatever the number of chunks.
    pending = beside.look_up(mapping, chunks[0][1]) if chunks else None
    rest = itertools.chain.from_iterable(later for _start, later in chunks[1:])
    members = beside.read(_members_looked_up, mapping, rest, members_known=beside.members) if len(chunks) > 1 else None
    for index in range(len(chunks)):
        following = beside.look_up(mapping, chunks[index + 1][1], after=members) if index + 1 < len(chunks) else None
        yield pending
        pending = following


class _Beside:
    """The pipelined import's two worker threads, each with its own connection, kept for the whole import: one looks
    the chunks up, in order, remembering the channels and members found (a text is looked up once per file, and means
    one thing in all of it); the other runs the reads that cannot wait behind a chunk's look-ups (recorded orders to
    compare, the tier sums read ahead, which keep what they read on that connection).
    The tier sums' reads, from the first chunk's to the sums, are one transaction of the reading thread (`hold`), which
    writes nothing that lasts: behind a pooler in transaction mode (PgBouncer) they stay on one server connection, with
    what they keep there. Once a read fails in it, the thread's later reads raise that error.
    `draw_ids`: False for a dry run, which takes no ids from the orders' sequence."""

    def __init__(self, *, draw_ids=True):
        self._looking = ThreadPoolExecutor(max_workers=1)
        self._reading = ThreadPoolExecutor(max_workers=1)
        self._draw_ids = draw_ids
        self._futures = []
        # What the look-ups found: text -> channel id, or (member id, (number, status)); None for nothing found.
        self._channels, self.members = {}, {}

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        for future in self._futures:  # what is still waiting is not needed any more
            future.cancel()
        for executor in (self._looking, self._reading):
            executor.submit(_Beside._end)  # after the thread's last task
            executor.shutdown()
        return False

    def look_up(self, mapping, chunk, *, after=None):
        return self._submit(
            self._looking,
            _lookups,
            mapping,
            chunk,
            channels_known=self._channels,
            members_known=self.members,
            after=after,
            draw_ids=self._draw_ids,
        )

    def read(self, function, /, *args, hold=None, **kwargs):
        """`function(*args, **kwargs)` on the reading thread; `hold`: "begin" to run it in the thread's transaction
        (opened if it is not), "end" to run it there and end the transaction after it."""
        return self._submit(self._reading, _Beside._task, function, args, kwargs, hold)

    def _submit(self, executor, function, *args, **kwargs):
        self._futures = [future for future in self._futures if not future.done()]
        future = executor.submit(function, *args, **kwargs)
        self._futures.append(future)
        return future

    _held = threading.local()  # the reading thread's transaction ("block") and the error that aborted it ("failed")

    @staticmethod
    def _task(function, args, kwargs, hold):
        held = _Beside._held
        failed = getattr(held, "failed", None)
        if failed is not None:  # rather than "current transaction is aborted"
            raise failed
        try:
            if hold is not None and getattr(held, "block", None) is None:
                block = transaction.atomic()
                block.__enter__()
                held.block = block
            try:
                return function(*args, **kwargs)
            finally:
                if hold == "end":
                    _Beside._release()
        except BaseException as error:
            if getattr(held, "block", None) is not None:
                held.failed = error
            raise

    @staticmethod
    def _release():
        """Ends the thread's transaction, if any, by a rollback."""
        held = _Beside._held
        held.__dict__.pop("failed", None)
        block = held.__dict__.pop("block", None)
        if block is not None:
            transaction.set_rollback(True)
            block.__exit__(None, None, None)

    @staticmethod
    def _end():
        try:
            _Beside._release()
        finally:
            connections.close_all()


_PLAIN_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
_PLAIN_MONEY = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,2})?$")
_CENT = Decimal("0.01")
_HOUR = dt.timedelta(hours=1)


def _cleaners():
    """Amount and time parsers for one import: the spellings nearly every file uses (`1234.50`, `2024-05-07
    10:15:00`) are read directly; anything else goes through the normalisers, with their messages. `when_utc(text)`
    also gives a plain spelling's time as UTC ISO text (what the COPY and the fingerprint take), from a table of each
    day's hours: formatting each order's time costs more than the rest of its COPY line."""
    zone = timezone.get_default_timezone()
    plain_time, plain_money = _PLAIN_TIME.match, _PLAIN_MONEY.match
    from_iso = dt.datetime.fromisoformat
    # A plain spelling of another year goes to the normaliser, which refuses it with its message.
    first_year, last_year = PLAUSIBLE_YEARS

    def when(text):
        if plain_time(text) and first_year <= int(text[:4]) <= last_year:
            try:
                return from_iso(text).replace(tzinfo=zone)  # zoneinfo zones need no localize()
            except ValueError:  # 2024-02-30: the normaliser says why
                pass
        return parse_datetime(text, tz=zone)

    utc_hours = {}  # "2024-05-07 10" (a local hour) -> "2024-05-07T02" (its UTC date and hour), or ""

    def add_day(day):
        """The UTC date and hour of each local hour of the day ("2024-05-07"), or "" for an hour whose minutes and
        seconds do not carry over as they are: an offset change within it, or an offset that is not whole hours."""
        for hour in range(24):
            start = from_iso(f"{day} {hour:02d}:00:00").replace(tzinfo=zone)
            offset = start.utcoffset()
            end = start.replace(minute=59, second=59, microsecond=999999)
            whole = offset == end.utcoffset() and not offset % _HOUR
            utc_hours[start.isoformat(" ")[:13]] = start.astimezone(dt.UTC).isoformat()[:13] if whole else ""

    def when_utc(text):
        """(the time, its UTC ISO text, or None where it must be formatted from the time)"""
        if plain_time(text) and first_year <= int(text[:4]) <= last_year:
            try:
                at = from_iso(text).replace(tzinfo=zone)
            except ValueError:
                pass
            else:
                hour = text[:13]
                if hour not in utc_hours:
                    add_day(text[:10])
                prefix = utc_hours[hour]
                return at, f"{prefix}{text[13:]}+00:00" if prefix else None
        return parse_datetime(text, tz=zone), None

    @functools.lru_cache(maxsize=65536)
    def money(text):
        if plain_money(text):
            return Decimal(text).quantize(_CENT)
        return parse_money(text)

    return money, when, when_utc


def _clean(mapping, table, *, first=2, cleaners=None):
    """Every row's values (text stripped, amount and time parsed, currency upper-case) or its errors, by column;
    `first`: the spreadsheet number of the first row (the header is row 1); `cleaners`: the import's _cleaners()."""
    money, when, when_utc = cleaners or _cleaners()
    index = {column: position for position, column in mapping.items()}
    width = max(mapping) + 1
    required = [
        (column, index[column], message)
        for column, message in (
            ("channel", _("A channel is required (its code or name).")),
            ("order_id", _("An order id is required.")),
            ("member", _("A member is required (member number, phone or e-mail).")),
            ("amount", _("An amount is required, such as 1234.50.")),
            ("occurred_at", _("An order time is required, such as 2024-05-07 10:15:00.")),
        )
    ]
    order_limit = Order._meta.get_field("order_id").max_length
    store_limit = Order._meta.get_field("store").max_length
    order_too_long = _("An order id has at most %(limit)d characters.") % {"limit": order_limit}
    store_too_long = _("A store has at most %(limit)d characters.") % {"limit": store_limit}
    bad_currency = _("A currency is three letters, such as CNY.")
    currency_at, store_at = index.get("currency"), index.get("store")

    def checked(number, raw):
        """The row with every error, column by column."""
        values, errors = {}, []
        for column, position, message in required:
            text = raw[position].strip()
            if text:
                values[column] = text
            else:
                errors.append((column, message))
        if len(values.get("order_id", "")) > order_limit:
            errors.append(("order_id", order_too_long))
        if "amount" in values:
            try:
                values["amount"] = money(values["amount"])
            except ValueError as error:
                errors.append(("amount", str(error)))
        if "occurred_at" in values:
            try:
                values["occurred_at"] = when(values["occurred_at"])
            except ValueError as error:
                errors.append(("occurred_at", str(error)))
        currency = (raw[currency_at].strip().upper() if currency_at is not None else "") or "CNY"
        if len(currency) != 3 or not currency.isalpha():
            errors.append(("currency", bad_currency))
        values["currency"] = currency
        store = raw[store_at].strip() if store_at is not None else ""
        if len(store) > store_limit:
            errors.append(("store", store_too_long))
        values["store"] = store
        return HistoryRow(number, raw, values, errors)

    # Nearly every row is whole and well written: read in one go, and checked column by column (for the messages)
    # only when something is missing or wrong.
    channel_at, order_at, member_at, amount_at, time_at = (index[column] for column, _position, _message in required)
    rows = []
    append = rows.append
    for number, raw in enumerate(table, start=first):
        if len(raw) < width:
            raw = [*raw, *[""] * (width - len(raw))]
        channel, order_id, member = raw[channel_at].strip(), raw[order_at].strip(), raw[member_at].strip()
        amount, at = raw[amount_at].strip(), raw[time_at].strip()
        currency = (raw[currency_at].strip().upper() if currency_at is not None else "") or "CNY"
        store = raw[store_at].strip() if store_at is not None else ""
        if (
            channel
            and order_id
            and member
            and amount
            and at
            and len(order_id) <= order_limit
            and len(store) <= store_limit
            and (currency == "CNY" or (len(currency) == 3 and currency.isalpha()))
        ):
            try:
                amount, (at, utc) = money(amount), when_utc(at)
            except ValueError:
                append(checked(number, raw))
                continue
            values = {
                "channel": channel,
                "order_id": order_id,
                "member": member,
                "amount": amount,
                "occurred_at": at,
                "utc": utc,
                "currency": currency,
                "store": store,
            }
            append(HistoryRow(number, raw, values, []))
        else:
            append(checked(number, raw))
    return rows


def _channel_ids(texts) -> dict:
    return {text: channel.pk for text, channel in channels_by_code_or_name(texts).items()}


def _match_channels(rows, ids=None):
    if ids is None:
        ids = _channel_ids({row.values["channel"] for row in rows if "channel" in row.values})
    for row in rows:
        text = row.values.get("channel")
        if text is None:
            continue
        channel_id = ids.get(text)
        if channel_id is None:
            row.errors.append(
                ("channel", _("Unknown channel %(channel)s; create it under Channels first.") % {"channel": text})
            )
        else:
            row.values["channel_id"] = channel_id


def _member_keys(text, region):
    """(column, value) to look a text up by after its member number: its e-mail or its phone."""
    with contextlib.suppress(ValueError):
        return [("email", clean_email(text)) if "@" in text else ("phone", normalize_phone(text, region))]
    return []


def members_by_reference(texts) -> dict:
    """{text: (id of the member who holds the orders, (number, status))} for the texts that are a member's number,
    phone (any spelling) or e-mail; a merged-away member's orders go to the member kept. A few queries for the whole
    set of texts, whatever its size: member numbers first (most files use them), then the phones and e-mails of the
    texts that are no member number."""
    texts = set(texts)
    by_text = dict(_existing_keys("member_no", texts))
    keys = {text: _member_keys(text, settings.DEFAULT_PHONE_REGION) for text in texts if text not in by_text}
    for column in ("phone", "email"):
        wanted = {value for found in keys.values() for key, value in found if key == column}
        ids = dict(_existing_keys(column, wanted))
        for text, found in keys.items():
            if text not in by_text and found and found[0][0] == column and found[0][1] in ids:
                by_text[text] = ids[found[0][1]]
    members = _members_followed(set(by_text.values()))
    return {text: members[pk] for text, pk in by_text.items()}


def _match_members(rows, resolved=None):
    if resolved is None:
        resolved = members_by_reference({row.values["member"] for row in rows if "member" in row.values})
    for row in rows:
        text = row.values.get("member")
        if text is None:
            continue
        found = resolved.get(text)
        if found is None:
            row.errors.append(
                ("member", _("No member with the number, phone or e-mail %(member)s.") % {"member": text})
            )
        else:
            row.values["member_id"], row.values["member_status"] = found


def _members_followed(ids):
    """{member id: (id of the member who holds the orders, (that member's number, status))}: merged-away members
    are followed to the member kept (one query per step of the longest merge chain)."""
    records = {}
    pending = set(ids)
    while pending:
        fetched = {}
        for chunk in _chunks(sorted(pending), 50_000):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT id, member_no, status, merged_into_id FROM members_member "
                        "WHERE id = ANY(string_to_array(%s, ',')::bigint[])",
                        [",".join(map(str, chunk))],
                    )
                    found = cursor.fetchall()
            else:
                found = Member.objects.filter(pk__in=chunk).values_list("pk", "member_no", "status", "merged_into_id")
            for pk, member_no, status, merged_into_id in found:
                fetched[pk] = (member_no, status, merged_into_id)
        records.update(fetched)
        pending = {merged for _no, _status, merged in fetched.values() if merged and merged not in records}
    resolved = {}
    for pk in ids:
        seen, current = set(), pk
        while records[current][2] and current not in seen and records[current][2] in records:
            seen.add(current)
            current = records[current][2]
        resolved[pk] = (current, (records[current][0], records[current][1]))
    return resolved


def _chunks(items, size=BATCH):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _recorded(keys_by_channel, columns):
    """[(channel id, order id, *columns)] of the orders already recorded under these keys."""
    if connection.vendor == "postgresql":
        # All channels in one statement (one pass over the orders, where a statement per channel makes one each), the
        # keys as two text parameters split by the server (see members.importing.services._existing_keys); an order id
        # with a line break in it is refused before.
        keys = [(channel_id, order_id) for channel_id, order_ids in keys_by_channel.items() for order_id in order_ids]
        selected = ", ".join(f"o.{column}" for column in columns)
        # One probe of order_unique_per_channel per key: for the tens of thousands of keys of a chunk, the planner
        # would rather hash the whole table (0.8 s over 1,200,000 orders, where the probes take 0.1 s). In a
        # transaction, so that the settings are its own (see session_settings()).
        with (
            transaction.atomic(savepoint=False),
            session_settings(enable_hashjoin="off", enable_mergejoin="off"),
            connection.cursor() as cursor,
        ):
            for chunk in _chunks(keys, 250_000):
                cursor.execute(
                    f"SELECT o.channel_id, o.order_id, {selected} FROM members_order o "  # noqa: S608
                    "JOIN unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, E'\\n')) AS k(channel_id, "
                    "order_id) ON o.channel_id = k.channel_id AND o.order_id = k.order_id",
                    [",".join(str(key[0]) for key in chunk), "\n".join(key[1] for key in chunk)],
                )
                yield from cursor.fetchall()
        return
    for channel_id, order_ids in keys_by_channel.items():
        for chunk in _chunks(order_ids, 500):
            yield from Order.objects.filter(channel_id=channel_id, order_id__in=chunk).values_list(
                "channel_id", "order_id", *columns
            )


def _fingerprint(values):
    """The API's fingerprint of the order a row describes (kept on new orders, so that a partner sending the same
    order later is a replay), also the quick test that a recorded order says the same."""
    return services.order_fingerprint(
        order_id=values["order_id"],
        member_id=values["member_id"],
        amount=values["amount"],
        currency=values["currency"],
        occurred_at=values["occurred_at"],
        store=values["store"],
    )


def _keys(rows, *, collect=True) -> dict:
    """{channel id: {order ids}} of the good rows (a line break in an order id is refused first); only the refusals
    without `collect`."""
    keys_by_channel = {}
    for row in rows:
        if row.errors:
            continue
        values = row.values
        if "\n" in values["order_id"]:
            row.errors.append(("order_id", _("An order id is one line of text.")))
        elif collect:
            keys_by_channel.setdefault(values["channel_id"], set()).add(values["order_id"])
    return keys_by_channel


def _recorded_list(keys_by_channel) -> list:
    """[(channel id, order id, *compared values)] of the orders recorded under these keys."""
    return list(_recorded(keys_by_channel, COMPARED))


def _recorded_fingerprints(keys_by_channel) -> dict:
    return {(channel, order_id): print_ for channel, order_id, print_ in _recorded(keys_by_channel, ["fingerprint"])}


def _compare(row, known) -> None:
    """A row naming an order recorded already (or new earlier in the file) is unchanged when it says the same, else
    refused: an import never changes an order."""
    values = row.values
    mine = (values["member_id"], values["amount"], values["currency"], values["occurred_at"], values["store"])
    changed = [name for name, left, right in zip(COMPARED, mine, known, strict=True) if left != right]
    if not changed:
        row.status = "unchanged"
        return
    labels = {name: str(Order._meta.get_field(name.removesuffix("_id")).verbose_name) for name in changed}
    row.errors.append(
        (
            "order_id",
            _("Order %(order)s is recorded already with another %(fields)s; an import does not change orders.")
            % {"order": values["order_id"], "fields": ", ".join(labels[name] for name in changed)},
        )
    )


def _plan(rows, *, fingerprints=None, in_file=None, beside=None):
    """Each good row is new, unchanged (it says what is recorded, in the database or earlier in the file) or refused
    (it says something else about a recorded order; an import never changes an order). Returns the new rows. The
    pipelined import gives the recorded orders' `fingerprints`, read beside the cleaning, the file's new orders so far
    (`in_file`, {(channel id, order id): compared values}, added to here) and its second connection (`beside`), which
    reads what is compared while this one stores orders."""
    keys_by_channel = _keys(rows, collect=fingerprints is None)
    # Recorded orders by fingerprint first (a whole re-import compares 64 characters per row); the values of those
    # whose fingerprint differs (lines, or an order recorded before fingerprints) are read and compared one by one.
    # A new row's fingerprint is made as it is written (_copy_text).
    if fingerprints is None:
        fingerprints = _recorded_fingerprints(keys_by_channel)
    differing = {}
    for row in rows:
        if not row.errors:
            key = (row.values["channel_id"], row.values["order_id"])
            if key in fingerprints:
                row.values["fingerprint"] = _fingerprint(row.values)
                if fingerprints[key] != row.values["fingerprint"]:
                    differing.setdefault(key[0], set()).add(key[1])
    found = []
    if differing and beside:  # this connection may be storing the file's first orders
        found = beside.read(_recorded_list, differing).result()
    elif differing:
        found = _recorded_list(differing)
    recorded = {(channel, order_id): tuple(values) for channel, order_id, *values in found}
    in_file = {} if in_file is None else in_file
    new = []
    for row in rows:
        if row.errors:
            continue
        values = row.values
        key = (values["channel_id"], values["order_id"])
        if key in fingerprints and fingerprints[key] == values["fingerprint"]:
            row.status = "unchanged"
            continue
        known = recorded.get(key) or in_file.get(key)
        if known is not None:
            _compare(row, known)
            continue
        member_no, status = values["member_status"]
        if status != Member.Status.ACTIVE:
            row.errors.append(
                (
                    "member",
                    _("Member %(member_no)s is %(status)s and can neither earn nor redeem.")
                    % {"member_no": member_no, "status": Member.Status(status).label},
                )
            )
            continue
        in_file[key] = (
            values["member_id"],
            values["amount"],
            values["currency"],
            values["occurred_at"],
            values["store"],
        )
        new.append(row)
    return new


def _records(new, now) -> list[tuple]:
    """The new rows as the orders' column values (after the id), in member and time order: the member index takes
    its new entries side by side, and each member's row is locked once by the foreign-key checks, not once per
    order."""
    placed = Order.Status.PLACED
    records = [
        (
            values["channel_id"],
            values["order_id"],
            values["member_id"],
            values["store"],
            values["amount"],
            0,
            values["currency"],
            values["occurred_at"],
            placed,
            values.get("utc"),  # the time as UTC text when cleaning made it; the fingerprint's place in the COPY
            now,
        )
        for values in (row.values for row in new)
    ]
    records.sort(key=operator.itemgetter(2, 7))  # member, then time
    return records


def _fingerprint_of_record(record) -> str:
    _channel_id, order_id, member_id, store, amount, _refunded, currency, occurred_at, _status, utc, _now = record
    return services.order_fingerprint_of_text(
        order_id, member_id, f"{amount:.2f}", currency, utc or occurred_at.astimezone(dt.UTC).isoformat(), store
    )


_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(ids, records, stamp: str) -> bytes:
    """COPY's text format written here, the columns' types known (psycopg's write_row() inspects every value and
    costs more than the rest of the writing), with each order's fingerprint, which takes the same amount and UTC time
    text. Order ids and stores are escaped only when the batch has a character to escape."""
    utc, fingerprint = dt.UTC, services.order_fingerprint_of_text
    texts = "".join(record[1] + record[3] for record in records)
    escaped = any(character in texts for character in "\\\t\n\r")
    lines = []
    for pk, record in zip(ids, records, strict=True):
        channel_id, order_id, member_id, store, amount, _refunded, currency, occurred_at, status, at, _now = record
        at, money = at or occurred_at.astimezone(utc).isoformat(), str(amount)  # cents: _cleaners() quantizes
        print_ = fingerprint(order_id, member_id, money, currency, at, store)
        if escaped:
            order_id, store = order_id.translate(_ESCAPE), store.translate(_ESCAPE)
        lines.append(
            f"{pk}\t{channel_id}\t{order_id}\t{member_id}\t{store}\t{money}\t0\t{currency}\t{at}\t{status}\t{print_}\t"
            f"{stamp}\n"
        )
    return "".join(lines).encode()


_COPY_SQL = f"COPY members_order ({', '.join(_COPY_COLUMNS)}) FROM STDIN"


def _store(psycopg_connection, texts):
    """One COPY of these texts (the server stores the rows as they come; the foreign keys are checked when it ends,
    constraints being immediate)."""
    with psycopg_connection.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        for text in texts:
            copy.write(text)


class _Writer:
    """Stores a file's new orders chunk by chunk (a COPY per chunk on PostgreSQL, bulk_create elsewhere) in one
    transaction, opened at the first write, then lets loyalty count them for tiers and commits when the `with` block
    ends without an exception. An exception in the block rolls everything back.

    `beside`: the import's worker threads. With them, a thread of the writer's own runs each chunk's COPY on this
    connection (the transaction's), so that the next chunk is decided while the server stores one and checks its
    foreign keys, and the reading connection reads ahead what the tiers will need (`orders_importing`, chunk by chunk).
    Only outside any transaction of the caller, whose uncommitted rows another connection would not see."""

    def __init__(self, beside=None):
        self.beside = beside
        self.now = timezone.now()
        self.records, self.ids = [], []
        self._transaction = contextlib.ExitStack()
        self._storing = ThreadPoolExecutor(max_workers=1) if beside is not None else None
        self._stored = []  # the COPY of each chunk, on the storing thread
        self._reads = []  # the tier reads ahead, one per chunk

    def __enter__(self):
        return self

    def write(self, new, ids, written):
        """Store these new rows; `ids`: order ids drawn for them (at least one per row, or None to draw them here);
        `written(fraction)` is called as they are sent."""
        records = _records(new, self.now)
        if not records:
            return
        first = not self.records
        if first:
            self._transaction.enter_context(transaction.atomic())
        if connection.vendor != "postgresql":
            records = [(*record[:9], _fingerprint_of_record(record), record[10]) for record in records]
            objects = [Order(**dict(zip(_COPY_COLUMNS[1:], record, strict=True))) for record in records]
            for start in range(0, len(objects), BATCH):
                Order.objects.bulk_create(objects[start : start + BATCH], batch_size=500)
                written(min(start + BATCH, len(objects)) / len(objects))
            self.records += records
            self.ids += [order.pk for order in objects]
            return
        self._check_stored()
        if first:
            # Ids drawn here for the first chunk only (later ones come with theirs, drawn by the look-ups), before any
            # COPY runs on this connection.
            ids = ids or sequence_values(len(records), serial_of=Order._meta.db_table)
            with connection.cursor() as cursor:
                # The foreign keys are checked as each COPY ends (a statement's row triggers fire then), while the
                # next chunk is decided, instead of all at the commit.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if self.beside is not None:
            self._reads.append(
                self.beside.read(
                    events.orders_importing.send,
                    # member, channel, time (its UTC text where cleaning made it), amount
                    orders=[(record[2], record[0], record[9] or record[7], record[4]) for record in records],
                    first=first,
                    hold="begin",
                )
            )
        ids = ids[: len(records)]
        stamp = self.now.isoformat()
        texts = []
        for start in range(0, len(records), BATCH):
            texts.append(_copy_text(ids[start : start + BATCH], records[start : start + BATCH], stamp))
            written(min(start + BATCH, len(records)) / len(records))
        if self._storing is None:
            with connection.wrap_database_errors:
                _store(connection.connection, texts)
        else:
            # On the transaction's psycopg connection (which serialises its use); nothing else uses it meanwhile.
            self._stored.append(self._storing.submit(_store, connection.connection, texts))
        self.records += records
        self.ids += ids

    def _check_stored(self, *, wait=False):
        """Raises the error of a chunk's COPY (a foreign key or a key recorded meanwhile) as Django's; with `wait`,
        once every chunk is stored."""
        with connection.wrap_database_errors:
            for stored in self._stored:
                if wait or stored.done():
                    stored.result()

    def __exit__(self, kind, error, trace):
        if kind is not None:  # the chunks not stored yet are dropped, the one being stored ends, then the rollback
            self._stop_storing()
            return self._transaction.__exit__(kind, error, trace)
        try:
            summing = None
            if self._reads:  # the tier sums of the chunks read ahead, while the server stores the last one
                summing = self.beside.read(events.orders_importing.send, orders=None, hold="end")
            self._check_stored(wait=True)
            self._stop_storing()
            if self.records and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            if self.records:
                for read in self._reads:
                    read.result()  # a read that failed leaves the sums incomplete: its error stops the import
                events.orders_imported.send(
                    orders=[
                        (pk, record[2], record[0], record[7]) for pk, record in zip(self.ids, self.records, strict=True)
                    ],
                    prepared=() if summing is None else summing.result(),
                )
        except BaseException:
            self._stop_storing()
            if not self._transaction.__exit__(*sys.exc_info()):
                raise
        else:
            self._transaction.close()  # the commit
        return False

    def _stop_storing(self):
        if self._storing is not None:
            self._storing.shutdown(cancel_futures=True)


def _lookups(mapping, table, *, channels_known=None, members_known=None, after=None, draw_ids=True) -> tuple:
    """(channel ids, members, recorded fingerprints, order ids) for a chunk of a file: its channels, members and
    recorded orders by the keys as written (rows that cannot be looked up are reported by the cleaning), and an id for
    each row from the orders' sequence (gaps where rows are not new; None without `draw_ids`). `channels_known`,
    `members_known`: the texts looked up before ({text: found or None}), added to here; `after`: the future of a
    look-up of members to wait for before this chunk's are looked up (those of the rest of the file)."""
    at = {column: index for index, column in mapping.items()}
    known = {} if members_known is None else members_known
    channels = {} if channels_known is None else channels_known
    with jit_off():
        channel_ids = _remembered(channels, _texts(at["channel"], table), _channel_ids)
        if after is not None:
            after.result()
        members = _remembered(known, _texts(at["member"], table), members_by_reference)
        keys = {}
        channel_at, order_at = at["channel"], at["order_id"]
        widest = max(channel_at, order_at)
        for raw in table:
            if len(raw) > widest:
                channel_id, order_id = channel_ids.get(raw[channel_at].strip()), raw[order_at].strip()
                if channel_id is not None and order_id and "\n" not in order_id:
                    keys.setdefault(channel_id, set()).add(order_id)
        fingerprints = _recorded_fingerprints(keys)
        ids = sequence_values(len(table), serial_of=Order._meta.db_table) if draw_ids else None
    return channel_ids, members, fingerprints, ids


def _members_looked_up(mapping, rows, *, members_known) -> None:
    """The members of these rows (the rest of a file) looked up in one go, into `members_known` (see _lookups)."""
    at = {column: index for index, column in mapping.items()}["member"]
    with jit_off():
        _remembered(members_known, (), members_by_reference, also=_texts(at, rows))


def _texts(position, rows) -> set:
    """The texts of a column (by position) in these rows, stripped, without the empty ones."""
    return {raw[position].strip() for raw in rows if len(raw) > position} - {""}


def _remembered(known, wanted, look_up, *, also=()) -> dict:
    """{text: found} for the `wanted` texts that `look_up(texts)` finds, each text looked up once: `known` ({text:
    found or None}) keeps the answers, and takes those of the `also` texts in the same call."""
    unknown = (set(wanted) | set(also)) - known.keys()
    if unknown:
        found = look_up(unknown)
        known.update({text: found.get(text) for text in unknown})
    return {text: known[text] for text in wanted if known[text] is not None}


def history_row_count(upload) -> int | None:
    """About how many data rows an uploaded history file has, without reading it as a table: the line breaks of a
    CSV, the sheet's recorded size for an XLSX (None when the workbook does not record it)."""
    upload.seek(0)
    head = upload.read(4)
    upload.seek(0)
    if head == b"PK\x03\x04":
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(upload, read_only=True)
            rows = workbook.worksheets[0].max_row
            workbook.close()
        except (zipfile.BadZipFile, KeyError, ValueError, OSError):  # the preview reports an unreadable workbook
            rows = None
        upload.seek(0)
        return None if rows is None else max(rows - 1, 0)
    lines = sum(chunk.count(b"\n") for chunk in upload.chunks())
    upload.seek(0)
    return lines  # the header's line break stands for a last line without one
