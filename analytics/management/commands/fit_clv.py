import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics import clv
from loyalty.models import Program


class Command(BaseCommand):
    help = (
        "Fit the BG/NBD and Gamma-Gamma models on each programme's orders up to a day (default today), store the "
        "fitted parameters, and score every member: P(alive), expected purchases, expected spend and CLV."
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
            fit = clv.clv_fit(program=each, as_of=day)
            if fit.r is None:
                self.stdout.write(f"{each.code} {day}: {fit.message} ({fit.members} members)")
                continue
            self.stdout.write(
                f"{each.code} {day}: {fit.members} members, {fit.repeat_members} repeat; "
                f"BG/NBD r={fit.r:.4f} alpha={fit.alpha:.4f} a={fit.a:.4f} b={fit.b:.4f} "
                f"LL={fit.bgnbd_log_likelihood:.2f} converged={fit.bgnbd_converged}; "
                f"Gamma-Gamma p={fit.p:.4f} q={fit.q:.4f} v={fit.v:.4f} LL={fit.gamma_gamma_log_likelihood:.2f} "
                f"converged={fit.gamma_gamma_converged}; {fit.seconds:.1f} s"
            )
