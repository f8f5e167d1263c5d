"""Loyalty's refusals, in the one hierarchy of members.errors."""

from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    default_message = _("The member does not have enough points.")


class ProgramNotConfigured(DomainError):
    code = "program_not_configured"
    default_message = _("This channel belongs to no loyalty programme; link it to one in the admin.")


class RewardUnavailable(DomainError):
    code = "reward_unavailable"
    default_message = _("This reward is not available.")


class LimitExceeded(DomainError):
    code = "limit_exceeded"
    default_message = _("The member has reached the limit for this reward.")


class CouponNotValid(DomainError):
    code = "coupon_not_valid"
    default_message = _("This coupon cannot be used.")
