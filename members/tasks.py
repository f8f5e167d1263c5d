"""Celery tasks of the members app: thin, idempotent, each calls one service."""

from celery import shared_task

from .importing import services


@shared_task(acks_late=True)
def run_import_job(job_id: int) -> dict:
    job = services.import_job_run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "counts": job.counts}
