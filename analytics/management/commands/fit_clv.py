from django.core.management.base import BaseCommand

from analytics import clv
from loyalty.management.options import add_day_and_program_arguments, day_and_programs


class Command(BaseCommand):
    help = (
        "Fit the BG/NBD and Gamma-Gamma models on each programme's orders up to a day (default today), store the "
        "fitted parameters, and score every member: P(alive), expected purchases, expected spend and CLV."
    )

    def add_arguments(self, parser):
        add_day_and_program_arguments(parser)

    def handle(self, *args, as_of=None, program=None, **options):
        day, programs = day_and_programs(as_of=as_of, program=program)
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
