"""Analytics' answers to the hooks of lower apps (thin: each calls one service or selector)."""

from loyalty import jobs as loyalty_jobs
from loyalty import program_config as loyalty_services

from . import clv, rfm, selectors

RFM_JOB = "analytics_rfm"
CLV_JOB = "analytics_clv"


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


def daily_jobs(*, program, as_of):
    """After loyalty's daily jobs: RFM scores, then the CLV fit and scores, once per programme and day."""
    return [
        loyalty_jobs.job_run_once(program=program, job=RFM_JOB, as_of=as_of, work=_rfm_work),
        loyalty_jobs.job_run_once(program=program, job=CLV_JOB, as_of=as_of, work=_clv_work),
    ]


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
