import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loyalty import jobs
from loyalty.models import Program
from members import services as member_services


class Command(BaseCommand):
    help = (
        "Run the daily loyalty jobs as of a day (default today): pending points that became available, expiry, "
        "tier evaluation, birthday rewards; then the apps above: analytics' scores, campaigns' journeys and "
        "scheduled campaigns. Running it twice for one day changes nothing the second time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="YYYY-MM-DD (default: today in TIME_ZONE)")
        parser.add_argument("--program", help="only this programme's code (default: every active programme)")

    def handle(self, *args, as_of=None, program=None, **options):
        try:
            day = dt.date.fromisoformat(as_of) if as_of else timezone.localdate()
        except ValueError:
            raise CommandError(f"--as-of must be a date like 2026-11-22, not {as_of!r}.") from None
        programs = Program.objects.filter(is_active=True)
        if program:
            programs = programs.filter(code=program)
            if not programs.exists():
                raise CommandError(f"No active programme with code {program!r}.")
        for each in programs:
            for run in jobs.jobs_run(program=each, as_of=day):
                self.stdout.write(f"{each.code} {run.as_of} {run.job}: {run.counts}")
        if not program:
            # The retention rule (MEMBER_RETENTION_DAYS) concerns every programme's members: run with all of them.
            erased = member_services.members_erase_retained()
            if erased is not None:
                self.stdout.write(f"members erased after the retention period: {erased}")
