"""An import job queued on the real broker (Redis) is run by a real Celery worker and lands in the database."""

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from members.importing import services
from members.models import ImportJob, Member

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_import_job_runs_on_a_real_worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from members.demo import demo_channels

    assert not app.conf.task_always_eager  # the broker is real here
    demo_channels()
    app.control.purge()
    upload = SimpleUploadedFile("sample.csv", (DATA / "members_sample_gb18030.csv").read_bytes())
    with start_worker(app, perform_ping_check=False, pool="threads", concurrency=1, shutdown_timeout=30):
        job = services.import_job_create(upload=upload, dry_run=False, skip_errors=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
                break
            time.sleep(0.2)
    assert job.status == ImportJob.Status.DONE, job.message
    assert job.progress == 100
    assert job.counts == {"new": 1861, "updated": 0, "unchanged": 48, "errors": 91}
    assert Member.objects.count() == 1861
