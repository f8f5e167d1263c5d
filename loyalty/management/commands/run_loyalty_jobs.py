from django.core.management.base import BaseCommand

from loyalty import jobs
from loyalty.management.options import add_day_and_program_arguments, day_and_programs
from members import services as member_services


class Command(BaseCommand):
    help = (
        "Run the daily loyalty jobs as of a day (default today): pending points that became available, expiry, "
        "tier evaluation, birthday rewards; then the apps above: analytics' scores, campaigns' journeys and "
        "scheduled campaigns. Running it twice for one day changes nothing the second time."
    )

    def add_arguments(self, parser):
        add_day_and_program_arguments(parser)

    def handle(self, *args, as_of=None, program=None, **options):
        day, programs = day_and_programs(as_of=as_of, program=program)
        for each in programs:
            for run in jobs.jobs_run(program=each, as_of=day):
                self.stdout.write(f"{each.code} {run.as_of} {run.job}: {run.counts}")
        if not program:
            # The retention rule (MEMBER_RETENTION_DAYS) concerns every programme's members: run with all of them.
            erased = member_services.members_erase_retained()
            if erased is not None:
                self.stdout.write(f"members erased after the retention period: {erased}")
