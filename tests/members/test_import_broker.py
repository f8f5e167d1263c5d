"""An import uploaded while the task queue is down fails at once with what to do, instead of answering 500 and
staying "pending" for ever."""

import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.celery import app
from members.models import ImportJob, Member

pytestmark = pytest.mark.django_db

CSV = "name,phone,email\n张三,13900139000,zhang.san@example.com\n".encode()


@pytest.fixture
def broker_down(monkeypatch):
    """The Celery app pointed at a closed port (nothing listens on port 1), with a short connection timeout."""
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (a CI run with a broker sets it).
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    saved = {
        key: app.conf[key]
        for key in ("broker_url", "task_always_eager", "broker_transport_options", "broker_connection_timeout")
    }
    app.conf.update(
        broker_url="redis://127.0.0.1:1/0",
        task_always_eager=False,
        broker_transport_options={"socket_connect_timeout": 0.5},
        broker_connection_timeout=0.5,
    )
    _forget_connections()
    yield
    _forget_connections()
    app.conf.update(saved)


def _forget_connections():
    # The connection and producer pools keep the broker they were made for; drop them so that the next task is
    # sent with the broker configured now.
    app._pool = None
    app.amqp._producer_pool = None


def test_an_upload_with_the_broker_down_fails_the_job_with_what_to_do(
    admin_client, broker_down, django_capture_on_commit_callbacks
):
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # chosen with the language switch
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:members_member_import"),
            {"file": SimpleUploadedFile("members.csv", CSV, content_type="text/csv")},
        )
    elapsed = time.monotonic() - started
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:members_member_import_job", args=[job.pk])
    assert job.status == ImportJob.Status.FAILED and job.finished_at is not None
    assert job.message == (
        "The task queue is not reachable, so the import could not start; nothing was imported. Start the worker "
        "and its broker (Redis) and upload the file again."
    )
    assert elapsed < 10
    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "The task queue is not reachable" in html and 'data-status="failed"' in html
    assert 'http-equiv="refresh"' not in html  # the page stops waiting for a worker that will never come
    assert not Member.objects.exists()


def test_the_message_is_in_chinese_for_chinese_staff(admin_client, broker_down, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:members_member_import"),
            {"file": SimpleUploadedFile("members.csv", CSV, content_type="text/csv")},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    assert "任务队列" in ImportJob.objects.get().message
