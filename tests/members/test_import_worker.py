"""An import job queued on the real broker (Redis) is run by a real Celery worker and lands in the database."""

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from members.importing import services
from members.models import ImportJob, Member

DATA = Path(__file__).resolve().parents[1] / "data"


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_is_seen_by_the_admin_page_while_the_import_is_still_writing(program):
    """The import writes in one transaction; its progress must not wait for the commit to become visible."""
    from django.db import DEFAULT_DB_ALIAS, connections

    from members import hooks

    job = ImportJob.objects.create(original_name="migrate.csv", dry_run=False, skip_errors=False)
    job.file.save("migrate.csv", SimpleUploadedFile("migrate.csv", b"name,phone,points_balance\nA,13700137000,10\n"))
    seen = {}

    def look_from_another_session(**kwargs):
        # Called inside the import's transaction, after the members are written and before the commit.
        observer = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with observer.cursor() as cursor:
                cursor.execute("SELECT progress FROM members_importjob WHERE id = %s", [job.pk])
                seen["progress"] = cursor.fetchone()[0]
                cursor.execute("SELECT count(*) FROM members_member WHERE phone = '+8613700137000'")
                seen["member_visible"] = cursor.fetchone()[0]
        finally:
            observer.close()
        return []

    hooks.members_imported.register(look_from_another_session)
    try:
        job = services.import_job_run(job_id=job.pk)
    finally:
        hooks.members_imported._receivers.remove(look_from_another_session)
    assert seen == {"progress": 99, "member_visible": 0}  # progress shown, the member not yet committed
    assert job.status == ImportJob.Status.DONE and job.progress == 100, job.message
    assert Member.objects.filter(phone="+8613700137000").exists()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_an_order_history_job_runs_on_a_real_worker(program, channel):
    """A large history file from the admin becomes a job: checked by a worker, then imported by a worker."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from loyalty.models import Account
    from members.models import Order
    from tests.factories import MemberFactory

    member = MemberFactory(phone="+8613800138000")
    app.control.purge()
    text = "渠道,订单号,会员编号,金额,下单时间\n" + "".join(
        f"{channel.code},W-{index},138 0013 8000,100,2024-01-{1 + index % 28:02d} 10:00:00\n" for index in range(30)
    )
    upload = SimpleUploadedFile("history.csv", text.encode("gb18030"))

    def finished(job):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
                return job
            time.sleep(0.2)
        return job

    with start_worker(app, perform_ping_check=False, pool="threads", concurrency=1, shutdown_timeout=30):
        preview = finished(
            services.import_job_create(upload=upload, dry_run=True, skip_errors=False, kind=ImportJob.Kind.ORDERS)
        )
        assert (preview.status, preview.counts) == ("done", {"new": 30, "unchanged": 0, "errors": 0}), preview.message
        assert not Order.objects.exists()
        job = finished(services.import_job_create(upload=None, dry_run=False, skip_errors=False, source=preview))
    assert (job.kind, job.status, job.progress) == ("orders", ImportJob.Status.DONE, 100), job.message
    assert job.counts == {"new": 30, "unchanged": 0, "errors": 0}
    assert Order.objects.filter(member=member).count() == 30
    assert Account.objects.get(member=member).tier.code == "silver"  # 3,000 in January 2024, no points
    assert Account.objects.get(member=member).balance == 0
