"""Celery tasks of the loyalty app: thin, idempotent, each calls one service."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from . import jobs
from .models import Program


@shared_task(acks_late=True)
def run_daily_jobs(as_of: str | None = None) -> dict:
    """The daily jobs for every active programme (the beat schedule runs this once a day)."""
    day = dt.date.fromisoformat(as_of) if as_of else timezone.localdate()
    return {
        program.code: jobs.daily_run(program=program, as_of=day) for program in Program.objects.filter(is_active=True)
    }
