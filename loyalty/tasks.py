"""Celery tasks of the loyalty app: thin, idempotent, each calls one service."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from members import services as member_services

from . import jobs
from .models import Program


@shared_task(acks_late=True)
def run_daily_jobs(as_of: str | None = None) -> dict:
    """The daily jobs for every active programme (the beat schedule runs this once a day)."""
    day = dt.date.fromisoformat(as_of) if as_of else timezone.localdate()
    result = {
        program.code: jobs.daily_run(program=program, as_of=day) for program in Program.objects.filter(is_active=True)
    }
    result["members_erased"] = member_services.members_erase_retained()
    return result
