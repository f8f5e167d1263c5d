"""Campaigns: who the brand reaches (segments) and how (campaigns, journeys, messages)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.models import Program
from members.models import Member


class Segment(models.Model):
    """A set of a programme's members: a rule evaluated as one query (dynamic), or a list loaded from a file (static).

    `count` and `counted_at` remember the last count; the detail page and the API's detail recount.
    """

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Rule (always up to date)")
        STATIC = "static", _("List (loaded from a file)")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="segments", verbose_name=_("programme"))
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    rule = models.JSONField(_("rule"), null=True, blank=True)
    count = models.PositiveIntegerField(_("members"), null=True, blank=True, editable=False)
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["program", "code"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="segment_code_unique_per_program"),
            models.CheckConstraint(condition=Q(kind="static") | Q(rule__isnull=False), name="segment_dynamic_has_rule"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"


class SegmentMember(models.Model):
    """A member listed in a static segment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="listed")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["segment", "member"]
        verbose_name = _("member of a list segment")
        verbose_name_plural = _("members of list segments")
        constraints = [models.UniqueConstraint(fields=["segment", "member"], name="segment_member_unique")]

    def __str__(self):
        return f"{self.segment_id}:{self.member_id}"
