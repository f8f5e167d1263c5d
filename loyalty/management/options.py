"""The options every daily-work command takes (`run_loyalty_jobs`, analytics' `fit_clv`): a day and a programme."""

import datetime as dt

from django.core.management.base import CommandError
from django.utils import timezone

from loyalty.models import Program


def add_day_and_program_arguments(parser) -> None:
    parser.add_argument("--as-of", help="YYYY-MM-DD (default: today in TIME_ZONE)")
    parser.add_argument("--program", help="only this programme's code (default: every active programme)")


def day_and_programs(*, as_of=None, program=None):
    """(the day, the active programmes it concerns); a bad date or an unknown programme is a CommandError."""
    try:
        day = dt.date.fromisoformat(as_of) if as_of else timezone.localdate()
    except ValueError:
        raise CommandError(f"--as-of must be a date like 2026-11-22, not {as_of!r}.") from None
    programs = Program.objects.filter(is_active=True)
    if program:
        programs = programs.filter(code=program)
        if not programs.exists():
            raise CommandError(f"No active programme with code {program!r}.")
    return day, programs
