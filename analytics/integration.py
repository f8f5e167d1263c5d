"""Analytics' answers to the hooks of lower apps (thin: each calls one service or selector)."""

import datetime as dt

from loyalty import jobs as loyalty_jobs
from loyalty import program_config as loyalty_services
from loyalty.models import ChannelProgram, Program

from . import clv, rfm, selectors, snapshots

RFM_JOB = "analytics_rfm"
CLV_JOB = "analytics_clv"
KPI_JOB = "analytics_kpis"


def _rfm_work(cursor, program, moment, as_of):
    return rfm.rfm_scores_compute(program=program, as_of=as_of)


def _clv_work(cursor, program, moment, as_of):
    fit = clv.clv_fit(program=program, as_of=as_of)
    return {
        "members": fit.members,
        "repeat_members": fit.repeat_members,
        "converged": fit.bgnbd_converged and fit.gamma_gamma_converged,
        "seconds": round(fit.seconds, 2),
    }


def _kpi_work(cursor, program, moment, as_of):
    # The run of a day snapshots the windows that end with the day before, the last whole one.
    return snapshots.kpi_snapshots_take(program=program, last_day=as_of - dt.timedelta(days=1))


def daily_jobs(*, program, as_of):
    """After loyalty's daily jobs: RFM scores, the CLV fit and scores, then the KPI snapshot, once per programme and
    day."""
    return [
        loyalty_jobs.job_run_once(program=program, job=RFM_JOB, as_of=as_of, work=_rfm_work),
        loyalty_jobs.job_run_once(program=program, job=CLV_JOB, as_of=as_of, work=_clv_work),
        loyalty_jobs.job_run_once(program=program, job=KPI_JOB, as_of=as_of, work=_kpi_work),
    ]


def orders_imported(*, orders, prepared=()):
    """Order history loaded: the snapshots of the programmes whose channels got orders are out of date."""
    channels = {order[2] for order in orders}
    programs = ChannelProgram.objects.filter(channel_id__in=channels).values_list("program_id", flat=True)
    snapshots.kpi_snapshots_drop(program_ids=set(programs))


def members_import_finished(*, counts, **payload):
    """Members loaded (with their join dates and programmes): the snapshots are out of date."""
    if counts.get("new") or counts.get("updated"):
        snapshots.kpi_snapshots_drop(program_ids=set(Program.objects.values_list("pk", flat=True)))


def member_scores_summary(*, members, channel=None):
    """The member answer's `rfm` and `clv {p_alive, clv}` in the calling channel's programme (one query a page)."""
    program = loyalty_services.program_for_channel(channel, required=False) if channel is not None else None
    if program is None:
        return {}
    scores = selectors.member_scores(member_ids=[member.pk for member in members], program=program)
    summary = {}
    for member_id, score in scores.items():
        summary[member_id] = {
            "rfm": score.rfm or None,
            "clv": {"p_alive": f"{score.p_alive:.4f}", "clv": score.clv} if score.clv_as_of else None,
        }
    return summary
