"""The campaigns app's refusals (the hierarchy is the project's, see members.errors)."""

from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class SegmentInUse(DomainError):
    code = "segment_in_use"
    default_message = _("This segment is used by another segment or a campaign.")
