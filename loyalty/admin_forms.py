"""Form fields for the scopes of earning rules, rewards and coupon templates: weekdays as checkboxes, channels,
stores and categories as searchable multi-selects of what exists, SKUs as a plain list. Each stores the JSON list
the model keeps, so `rules.in_scope` compares whole values."""

import re

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.utils.dates import WEEKDAYS
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from members import selectors as member_selectors
from members.models import Channel


class ScopeSelect(FilteredSelectMultiple):
    """Django admin's two-box selector with a search box. Wrapped in its own box: the selector's script puts
    itself first in its parent, which would otherwise be the form row, ahead of the row's label."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html('<div class="crm-scope">{}</div>', super().render(name, value, attrs, renderer))


def _channel_choices():
    return [(code, f"{name} · {code}") for code, name in Channel.objects.order_by("code").values_list("code", "name")]


def _named(values):
    return [(value, value) for value in values]


def weekdays_field():
    return forms.TypedMultipleChoiceField(
        label=_("weekdays"),
        choices=[(number + 1, name) for number, name in WEEKDAYS.items()],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked = every day."),
    )


def channels_field():
    return forms.MultipleChoiceField(
        label=_("channels"),
        choices=_channel_choices,
        required=False,
        widget=ScopeSelect(_("channels"), is_stacked=False),
        help_text=_("None chosen = all channels."),
    )


def stores_field():
    return forms.MultipleChoiceField(
        label=_("stores"),
        choices=lambda: _named(member_selectors.order_stores()),
        required=False,
        widget=ScopeSelect(_("stores"), is_stacked=False),
        help_text=_("The stores orders came from. None chosen = all stores."),
    )


def categories_field():
    return forms.MultipleChoiceField(
        label=_("categories"),
        choices=lambda: _named(member_selectors.order_categories()),
        required=False,
        widget=ScopeSelect(_("categories"), is_stacked=False),
        help_text=_("The product categories of order lines. None chosen = the whole order."),
    )


class ListTextField(forms.CharField):
    """A list typed as text, one item per line or separated by commas (Chinese commas too)."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        if isinstance(value, (list, tuple)):
            return [str(item) for item in value]
        text = super().to_python(value)
        return [item for item in (part.strip() for part in re.split(r"[,，;；\n]", text)) if item]


def skus_field():
    return ListTextField(
        label=_("SKUs"), required=False, help_text=_("One per line or separated by commas. Empty = any product.")
    )
