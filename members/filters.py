"""The member list's filters, one FilterSet for the partner API (`GET /members/`) and, where the admin filters the
same thing (the tag), for the admin's list filter too. `tier` asks the apps that know tiers
(`members.extensions.member_tier_filter`); without one it answers 400."""

import contextlib

import django_filters
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from . import extensions, selectors
from .models import Member
from .normalize import normalize_email, normalize_phone


class MemberFilter(django_filters.FilterSet):
    phone = django_filters.CharFilter(method="filter_phone")
    email = django_filters.CharFilter(method="filter_email")
    external_id = django_filters.CharFilter(method="filter_external_id")
    tier = django_filters.CharFilter(method="filter_tier")
    tag = django_filters.CharFilter(field_name="member_tags__tag__name")
    status = django_filters.ChoiceFilter(choices=Member.Status.choices)

    class Meta:
        model = Member
        fields = ["phone", "email", "external_id", "tier", "tag", "status"]

    @property
    def channel(self):
        principal = getattr(self.request, "user", None)
        return getattr(principal, "channel", None)

    @staticmethod
    def former_contact_member(params):
        """The member kept by a merge, when `params` look a member up by the merged-away member's phone or e-mail
        (and by nothing else that the kept member would have to match)."""
        if set(params) - {"phone", "email", "page", "page_size"}:
            return None
        with contextlib.suppress(ValueError):
            if params.get("phone"):
                return selectors.member_by_former_contact(phone=normalize_phone(params["phone"]))
            if params.get("email"):
                return selectors.member_by_former_contact(email=normalize_email(params["email"]))
        return None

    def filter_phone(self, queryset, name, value):
        # Any spelling the fields accept matches: the value is normalised exactly as on write.
        try:
            return queryset.filter(phone=normalize_phone(value))
        except ValueError as error:
            raise ValidationError({"phone": [str(error)]}) from None

    def filter_email(self, queryset, name, value):
        try:
            return queryset.filter(email=normalize_email(value))
        except ValueError as error:
            raise ValidationError({"email": [str(error)]}) from None

    def filter_external_id(self, queryset, name, value):
        if self.channel is None:
            return queryset.filter(identities__external_id=value)
        return queryset.filter(identities__channel=self.channel, identities__external_id=value)

    def filter_tier(self, queryset, name, value):
        if not len(extensions.member_tier_filter):
            raise ValidationError({"tier": [_("Tiers are not configured.")]})
        for entry in extensions.member_tier_filter:
            queryset = entry(queryset=queryset, tier_code=value, channel=self.channel)
        return queryset
