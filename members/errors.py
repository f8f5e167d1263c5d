"""Refusals about members, their orders and imports (the shared hierarchy is in `core.errors`)."""

from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class DuplicateMember(DomainError):
    code = "duplicate_member"
    default_message = _("A member with this phone, e-mail or channel identity already exists.")


class MemberNotActive(DomainError):
    code = "member_not_active"
    default_message = _("This member is frozen or closed and can neither earn nor redeem.")


class MergeRefused(DomainError):
    code = "merge_refused"
    default_message = _("These members cannot be merged.")


class ImportFailed(DomainError):
    code = "import_failed"
    status = 400
    default_message = _("The file could not be imported.")


class RefundExceedsOrder(DomainError):
    code = "refund_exceeds_order"
    default_message = _("The refunds of this order would exceed its amount.")
