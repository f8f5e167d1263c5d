"""Loading order history from a previous system: a django-import-export resource for the admin's import, with
its preview (every row new, unchanged, or an error with its reason), through the same service as the partner API.

An order is a fact: a row whose (channel, order_id) is recorded already is *unchanged* when it says the same and an
error when it says something else; an import never edits an order. History earns no points (balances come over
as opening balances with the member import), but it counts for tiers like any order.
"""

import contextlib
import re

import tablib
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets
from import_export.formats.base_formats import CSV, XLSX

from core.errors import DomainError
from members import services
from members.models import Member, Order
from members.normalize import normalize_email, normalize_phone, parse_datetime, parse_money
from members.selectors import channels_by_code_or_name

from .engine import read_table

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

    @staticmethod
    def _keys(text):
        """(column, value) to look the text up by, in order: member number, then e-mail or phone."""
        keys = [("member_no", text)]
        with contextlib.suppress(ValueError):
            keys.append(("email", normalize_email(text)) if "@" in text else ("phone", normalize_phone(text)))
        return keys

    def prefetch(self, texts):
        wanted = {}
        for text in {str(text or "").strip() for text in texts} - {""} - set(self._found):
            for column, value in self._keys(text):
                wanted.setdefault(column, set()).add(value)
        found = {}
        for column, values in wanted.items():
            for member in Member.objects.filter(**{f"{column}__in": values}):
                found[(column, getattr(member, column))] = member
        for text in {str(text or "").strip() for text in texts} - {""}:
            member = next((found[key] for key in self._keys(text) if key in found), None)
            if member is not None:
                self._found[text] = member

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            raise ValueError(_("A member is required (member number, phone or e-mail)."))
        member = self._found.get(text)
        if member is None:
            self.prefetch([text])
            member = self._found.get(text)
        if member is None:
            raise ValueError(_("No member with the number, phone or e-mail %(member)s.") % {"member": text})
        seen = set()
        while member.merged_into_id and member.pk not in seen:
            seen.add(member.pk)
            member = Member.objects.get(pk=member.merged_into_id)
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
        for column in ("channel", "order_id", "member", "amount", "occurred_at"):
            if column not in headers:
                missing.append(f"{column}/{ORDER_HEADERS[column][1] if column != 'member' else '会员编号'}")
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
