"""A programme's configuration as earning reads it: the programme of a channel, its active rules, its tiers and
which badge rules it uses, kept per process until the programme changes."""

from django.utils import timezone
from django.utils.translation import gettext as _

from .errors import ProgramNotConfigured
from .models import (
    ChannelProgram,
    EarningRule,
    Program,
    Tier,
)


def program_for_channel(channel, *, required=True) -> Program | None:
    # Remembered on the channel instance, which lives for one request or one task: one query per request.
    if not hasattr(channel, "_loyalty_program"):
        link = ChannelProgram.objects.select_related("program").filter(channel=channel).first()
        channel._loyalty_program = link.program if link else None
    if channel._loyalty_program is None and required:
        raise ProgramNotConfigured()
    return channel._loyalty_program


def entry_tier(program) -> Tier:
    tiers = program_config(program)["tiers"]
    tier = tiers[0] if tiers else None
    if tier is None:
        raise ProgramNotConfigured(_("Programme %(program)s has no tiers yet.") % {"program": program.code})
    return tier


_config_cache: dict = {}


def program_config(program) -> dict:
    """The programme's active rules, its tiers and which badge rules it uses, kept per process for as long as the
    programme's `updated_at` stays the same (any change to a rule, a tier or a badge touches it, see apps.py), so
    earning reads them once."""
    key = (program.pk, program.updated_at)
    config = _config_cache.get(key)
    if config is None:
        from .models import Badge

        config = {
            "rules": list(EarningRule.objects.filter(program=program, is_active=True)),
            "tiers": list(program.tiers.order_by("rank")),
            "badge_rules": set(Badge.objects.filter(program=program, is_active=True).values_list("rule", flat=True)),
        }
        if len(_config_cache) > 256:
            _config_cache.clear()
        _config_cache[key] = config
    return config


def program_touch(*, program_id) -> None:
    Program.objects.filter(pk=program_id).update(updated_at=timezone.now())
