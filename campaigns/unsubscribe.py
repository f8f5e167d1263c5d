"""Withdrawals of consent that arrive through a message channel: a reply such as `TD` or `退订` to an SMS (pushed
by the provider), and the unsubscribe link of an e-mail. Each is recorded in the member's consent history."""

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext as _

from members import services as member_services
from members.models import Member
from members.normalize import normalize_phone

STOP_WORDS = {"TD", "T", "N", "退订", "退", "取消", "STOP", "UNSUBSCRIBE", "QX"}
SALT = "campaigns.unsubscribe"


def is_stop_word(text: str) -> bool:
    return str(text).strip().upper().rstrip("。.!！") in STOP_WORDS


def sms_reply_record(*, phone: str, text: str, provider: str) -> bool:
    """A member's SMS reply; a stop word withdraws the SMS consent. Returns whether it did."""
    if not is_stop_word(text):
        return False
    try:
        phone = normalize_phone(phone)
    except ValueError:
        return False
    member = Member.objects.filter(phone=phone).first()
    if member is None:
        return False
    member_services.consents_record(
        member=member,
        consents={"sms": False},
        source=_("reply %(text)s (%(provider)s)") % {"text": text.strip()[:20], "provider": provider},
    )
    return True


def unsubscribe_token(*, member: Member, channel: str = "email") -> str:
    return signing.dumps({"m": member.pk, "c": channel}, salt=SALT, compress=True)


def unsubscribe_url(*, member: Member, channel: str = "email") -> str:
    path = reverse("campaigns-unsubscribe", args=[unsubscribe_token(member=member, channel=channel)])
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_by_token(*, token: str) -> Member | None:
    """The member of a valid link after withdrawing the link's consent (None for a broken or forged link)."""
    try:
        values = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    member = Member.objects.filter(pk=values.get("m")).first()
    if member is None or values.get("c") not in ("email", "sms", "wechat"):
        return None
    member_services.consents_record(member=member, consents={values["c"]: False}, source=_("unsubscribe link"))
    return member
