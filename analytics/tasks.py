"""Celery tasks of the analytics app: thin, idempotent, each calls one service."""

from celery import shared_task

from loyalty.models import Program

from . import rfm


@shared_task(acks_late=True)
def rfm_rescore(program_id: int) -> dict:
    """The programme's stored RFM scores computed again (after staff changed its thresholds)."""
    program = Program.objects.filter(pk=program_id).first()
    return rfm.rfm_scores_recompute(program=program) if program is not None else {"scored": 0, "cleared": 0}
