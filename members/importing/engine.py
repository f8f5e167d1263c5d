"""Reading a customer list: encodings, headers, and every cell normalised, with no database access.

The importer's service (`members.importing.services`) matches and writes; the command, the admin preview and the
Celery task all go through both, so a file imports the same way wherever it comes from.
"""

import csv
import functools
import io
import re
import zipfile
from dataclasses import dataclass, field

from charset_normalizer import from_bytes
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import ImportFailed
from members.models import validate_contact
from members.normalize import (
    CONTROL_CHARACTERS,
    clean_text,
    normalize_email,
    normalize_gender,
    normalize_phone,
    parse_birthday,
    parse_datetime,
    parse_money,
)

# Canonical column -> the headers operators write (compared case-insensitively, spaces ignored).
HEADERS = {
    "name": ["name", "姓名", "会员姓名", "名字"],
    "phone": ["phone", "mobile", "手机号", "手机", "手机号码", "电话"],
    "email": ["email", "e-mail", "邮箱", "电子邮箱", "邮件"],
    "gender": ["gender", "sex", "性别"],
    "birthday": ["birthday", "birth_date", "生日", "出生日期"],
    "city": ["city", "城市"],
    "channel": ["channel", "join_channel", "注册渠道", "渠道"],
    "total_spend": ["total_spend", "spend", "累计消费", "累计消费金额"],
    "joined_at": ["joined_at", "join_date", "注册时间", "入会时间"],
    "external_id": ["external_id", "渠道会员id", "渠道会员号", "会员卡号"],
    "points_balance": ["points_balance", "points", "积分余额", "积分"],
    "tier": ["tier", "会员等级", "等级"],
    "tags": ["tags", "标签"],
}
COLUMN_LABELS = {
    "en": {column: names[0] for column, names in HEADERS.items()},
    # The first Chinese header of each column (the English ones such as "mobile" come first for some columns).
    "zh": {column: next(name for name in names if not name.isascii()) for column, names in HEADERS.items()},
}
_HEADER_LOOKUP = {re.sub(r"\s+", "", name).lower(): column for column, names in HEADERS.items() for name in names}
_FAST_EMAIL = re.compile(r"^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_INTEGER = re.compile(r"^\d+$")


@dataclass
class Row:
    """One data row of the file: its spreadsheet number (header = 1), its cleaned values, and its errors."""

    number: int
    raw: list
    values: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)  # [(column, message)]

    @property
    def ok(self):
        return not self.errors


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) and GB18030 recognised by themselves; anything else by charset detection."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    best = from_bytes(data).best()
    if best is None:
        raise ImportFailed(_("The file's text encoding could not be recognised; save it as UTF-8 and try again."))
    return str(best)


def read_table(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header row and the data rows of a CSV (any of the encodings above) or XLSX file, as strings."""
    if not data.strip():
        raise ImportFailed(_("The file is empty."))
    if data[:4] == b"PK\x03\x04":
        table = _read_xlsx(data)
    else:
        text = decode(data)
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        # A row with text in any cell ("".join() in C: a generator per row cost a quarter of a second per 200,000).
        table = [row for row in csv.reader(io.StringIO(text), dialect) if "".join(row).strip()]
    if not table:
        raise ImportFailed(_("The file is empty."))
    return [str(cell).strip() for cell in table[0]], table[1:]


def _read_xlsx(data: bytes) -> list[list[str]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise ImportFailed(_("This is not a readable XLSX file.")) from None
    sheet = workbook.worksheets[0]
    rows = []
    for values in sheet.iter_rows(values_only=True):
        cells = ["" if value is None else _xlsx_text(value) for value in values]
        if any(cell.strip() for cell in cells):
            rows.append(cells)
    workbook.close()
    return rows


def _xlsx_text(value) -> str:
    if hasattr(value, "strftime"):
        return (
            value.strftime("%Y-%m-%d %H:%M:%S")
            if hasattr(value, "hour") and (value.hour or value.minute)
            else value.strftime("%Y-%m-%d")
        )
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def header_labels(headers: list[str]) -> dict[str, str]:
    """Canonical column -> the file's own header for it, so that messages name the columns as the operator does."""
    return {column: headers[index] for index, column in map_headers(headers).items()}


def map_headers(headers: list[str]) -> dict[int, str]:
    """Column index -> canonical column. Unknown headers are ignored; a missing name column is refused."""
    mapping = {}
    for index, header in enumerate(headers):
        column = _HEADER_LOOKUP.get(re.sub(r"\s+", "", header).lower())
        if column and column not in mapping.values():
            mapping[index] = column
    columns = set(mapping.values())
    if "name" not in columns:
        raise ImportFailed(
            _("The file needs a name column (name or 姓名). Headers found: %(headers)s.")
            % {"headers": ", ".join(headers) or "-"}
        )
    if not columns & {"phone", "email", "external_id"}:
        raise ImportFailed(_("The file needs a phone, e-mail or external_id column (手机号, 邮箱)."))
    return mapping


def _email(value):
    text = value.strip().lower()
    # The common shape is checked with one regular expression; anything else goes through Django's validator.
    return text if _FAST_EMAIL.match(text) else normalize_email(value)


def _cleaners():
    """The cleaners of one import, with the time zone looked up once, not once per cell."""
    zone = timezone.get_default_timezone()
    region = settings.DEFAULT_PHONE_REGION
    # Dates repeat a lot in a customer list (a few thousand join days for 100,000 rows): remember them per import.
    return {
        "phone": functools.partial(normalize_phone, region=region),
        "email": _email,
        "gender": normalize_gender,
        "birthday": functools.lru_cache(maxsize=65536)(parse_birthday),
        "total_spend": parse_money,
        "joined_at": functools.lru_cache(maxsize=65536)(functools.partial(parse_datetime, tz=zone)),
    }


def clean_rows(headers: list[str], table: list[list[str]], *, first_number: int = 2) -> list[Row]:
    """Every row with its cleaned values or its errors (column, message), in the operator's language."""
    return _clean_chunk(map_headers(headers), table, first_number)


def _clean_chunk(mapping, table, first_number):
    cleaners = _cleaners()
    plan = [(index, column, cleaners.get(column)) for index, column in mapping.items()]
    width = max(mapping) + 1
    rows = []
    append = rows.append
    name_required = _("A name is required.")
    for offset, raw in enumerate(table):
        if len(raw) < width:
            raw = [*raw, *[""] * (width - len(raw))]
        values, errors = {}, []
        for index, column, cleaner in plan:
            text = raw[index]
            if not text or not (text := text.strip()):
                continue
            if cleaner is None:
                # isprintable() is the fast test (C, no allocation); the pattern decides for the rare exceptions.
                if not text.isprintable() and CONTROL_CHARACTERS.search(text) and not (text := clean_text(text)):
                    continue
                values[column] = text
                continue
            try:
                values[column] = cleaner(text)
            except ValueError as error:
                errors.append((column, str(error)))
        row = Row(number=first_number + offset, raw=raw, values=values, errors=errors)
        if "name" not in values and not any(column == "name" for column, _message in errors):
            errors.append(("name", name_required))
        if not any(column in ("phone", "email") for column, _message in errors):
            try:
                validate_contact(
                    phone=values.get("phone"), email=values.get("email"), external_id=values.get("external_id")
                )
            except ValidationError as error:
                errors.append(("phone", error.messages[0]))
        points = values.get("points_balance")
        if points is not None:
            if _INTEGER.match(points):
                values["points_balance"] = int(points)
            else:
                errors.append(("points_balance", _("Points are a whole number, such as 1200.")))
        if "tags" in values:
            values["tags"] = [tag.strip() for tag in re.split(r"[,，;；|]", values["tags"]) if tag.strip()]
        append(row)
    return rows
