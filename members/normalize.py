"""How the spellings customers, shops and spreadsheets use become one stored value.

Used by the API serializers, the admin forms and the importer, so a phone number matches whatever way it was
written. Each function returns the normalised value or raises `ValueError` with a message for the operator.
The fast paths handle the common Chinese spellings without calling libphonenumber (which parses ~36k numbers/s);
anything else goes through libphonenumber.
"""

import datetime as dt
import functools
import json
import re
from decimal import Decimal, InvalidOperation

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone
from django.utils.translation import gettext as _

# Full-width digits and punctuation, as typed with a Chinese input method, to ASCII.
_FULLWIDTH = str.maketrans("０１２３４５６７８９＋－（）　．，＠", "0123456789+-() .,@")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_CN_PREFIXED = re.compile(r"^(?:\+86|0086|86)(\d{11})$")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATETIME = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_MONEY_NOISE = re.compile(r"[\s,¥￥$]|^(?:RMB|CNY)", re.IGNORECASE)
_email_validator = EmailValidator()

GENDERS = {
    "male": "male",
    "m": "male",
    "男": "male",
    "先生": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "女士": "female",
    "": "unknown",
    "unknown": "unknown",
    "u": "unknown",
    "未知": "unknown",
    "保密": "unknown",
}


@functools.cache
def _cn_mobile_pattern():
    # libphonenumber's own pattern for Chinese mobile numbers, so the fast path accepts exactly what it accepts.
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    return re.compile(metadata.mobile.national_number_pattern)


def normalize_phone(raw, region=None):
    """'138 0013 8000', '+86 138-0013-8000', '86-13800138000', full-width digits... -> '+8613800138000'."""
    region = region or settings.DEFAULT_PHONE_REGION
    text = str(raw).strip().translate(_FULLWIDTH)
    compact = _PHONE_SEPARATORS.sub("", text)
    national = None
    prefixed = _CN_PREFIXED.match(compact)
    if prefixed and (compact[0] == "+" or compact.startswith("00") or region == "CN"):
        national = prefixed.group(1)
    elif region == "CN" and len(compact) == 11 and compact.isdigit():
        national = compact
    if national is not None and _cn_mobile_pattern().fullmatch(national):
        return "+86" + national
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(_("Not a phone number.")) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("Not a valid phone number (too short, too long or an unknown range)."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw):
    """E-mail addresses are stored lower-case, so that they compare case-insensitively and stay indexable."""
    text = str(raw).strip().translate(_FULLWIDTH).lower()
    try:
        _email_validator(text)
    except ValidationError:
        raise ValueError(_("Not a valid e-mail address.")) from None
    return text


def normalize_gender(raw):
    key = str(raw or "").strip().lower()
    try:
        return GENDERS[key]
    except KeyError:
        raise ValueError(_("Unknown gender; use male, female or unknown (男/女/未知).")) from None


def parse_date(raw):
    """'1990-05-17', '1990/5/17', '1990年05月17日', '19900517' -> date."""
    text = str(raw).strip().translate(_FULLWIDTH)
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not match:
        raise ValueError(_("Not a date; write it as 1990-05-17."))
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise ValueError(_("This date does not exist.")) from None


def parse_birthday(raw):
    """A written birthday checked by the model's rule (`members.models.validate_birthday`)."""
    from .models import validate_birthday

    birthday = parse_date(raw)
    try:
        validate_birthday(birthday)
    except ValidationError as error:
        raise ValueError(error.messages[0]) from None
    return birthday


# Times outside these years are typing errors or probes; refusing them at the edge also keeps every later sum
# (a tier window, an expiry date, a time-zone conversion) far from the ends of Python's calendar (years 1-9999).
PLAUSIBLE_YEARS = (1900, 2999)


def check_plausible_datetime(value: dt.datetime) -> dt.datetime:
    if not PLAUSIBLE_YEARS[0] <= value.year <= PLAUSIBLE_YEARS[1]:
        raise ValueError(
            _("A time must be between the years %(first)d and %(last)d.")
            % {"first": PLAUSIBLE_YEARS[0], "last": PLAUSIBLE_YEARS[1]}
        )
    return value


def validate_plausible_day(value: dt.date) -> None:
    """A form or serializer field's validator: a day of the years any order can have (PLAUSIBLE_YEARS)."""
    if value is not None and not PLAUSIBLE_YEARS[0] <= value.year <= PLAUSIBLE_YEARS[1]:
        raise ValidationError(
            _("A day must be between the years %(first)d and %(last)d.")
            % {"first": PLAUSIBLE_YEARS[0], "last": PLAUSIBLE_YEARS[1]}
        )


def parse_datetime(raw, tz=None):
    """'2020-05-07' or '2020-05-07 10:15:00' in the program's time zone, or ISO 8601 with an offset."""
    text = str(raw).strip().translate(_FULLWIDTH)
    match = _DATETIME.match(text)
    if match:
        year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
        try:
            # zoneinfo zones need no localize(): replace() gives the right offset.
            parsed = dt.datetime(year, month, day, hour, minute, second, tzinfo=tz or timezone.get_default_timezone())
        except ValueError:
            raise ValueError(_("This date does not exist.")) from None
        return check_plausible_datetime(parsed)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_("Not a date and time; write it as 2020-05-07 10:15:00.")) from None
    check_plausible_datetime(parsed)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, tz or timezone.get_default_timezone())


# C0 and C1 control characters (tab, line feed and carriage return included: a name is one line), and the
# characters that XML 1.0, hence XLSX, cannot hold. Operators never type them; they come from broken exports.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ufffe\uffff]")


EVENT_ATTRIBUTES_MAX_KEYS = 50
EVENT_ATTRIBUTES_MAX_KEY_LENGTH = 64
EVENT_ATTRIBUTES_MAX_BYTES = 16 * 1024


def check_event_attributes(attributes) -> dict:
    """An event's `attributes`: a flat object of at most 50 names (64 characters each) with text, number,
    true/false or null values, at most 16 KB as JSON. Counted before anything else, so 500,000 keys cost little."""
    if not isinstance(attributes, dict):
        raise ValueError(_("Attributes are a JSON object of names and values."))
    if len(attributes) > EVENT_ATTRIBUTES_MAX_KEYS:
        raise ValueError(_("At most %(count)d attributes.") % {"count": EVENT_ATTRIBUTES_MAX_KEYS})
    for key, value in attributes.items():
        if len(key) > EVENT_ATTRIBUTES_MAX_KEY_LENGTH:
            raise ValueError(
                _("An attribute name is at most %(count)d characters.") % {"count": EVENT_ATTRIBUTES_MAX_KEY_LENGTH}
            )
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise ValueError(_("Attribute values are flat: text, a number, true, false or null, not objects or lists."))
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise ValueError(_("Attributes cannot contain NUL characters."))
    size = len(json.dumps(attributes, ensure_ascii=False).encode())
    if size > EVENT_ATTRIBUTES_MAX_BYTES:
        raise ValueError(
            _("Attributes take at most %(limit)d KB as JSON (these take %(size)d bytes).")
            % {"limit": EVENT_ATTRIBUTES_MAX_BYTES // 1024, "size": size}
        )
    return attributes


def clean_text(raw) -> str:
    """A one-line text field as stored: control characters dropped, runs of spaces made one, trimmed."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", str(raw)).split())


def parse_money(raw):
    """'1234.50', '1234', '¥1,234.50', 'RMB 88' -> Decimal('1234.50'); not negative, at most two decimals."""
    text = _MONEY_NOISE.sub("", str(raw).strip().translate(_FULLWIDTH))
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(_("Not a number; write an amount such as 1234.50.")) from None
    if not value.is_finite():
        raise ValueError(_("Not a number; write an amount such as 1234.50."))
    if value < 0:
        raise ValueError(_("An amount cannot be negative."))
    if value >= Decimal("1e12"):  # before quantize(), which cannot hold 1e26 or more to the cent (InvalidOperation)
        raise ValueError(_("This amount is too large."))
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(_("An amount has at most two decimal places."))
    return value.quantize(Decimal("0.01"))
