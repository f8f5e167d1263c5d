"""The daily jobs in development and from the admin: the schedule is installed (visible under Periodic tasks),
staff with the permission run today's jobs from the Job runs page (POST with CSRF), and the scheduling screens
come after the business sections."""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.models import JobRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

JOB_RUNS = "/admin/loyalty/jobrun/"


def test_the_daily_schedule_is_installed_and_shown_under_periodic_tasks(admin_client):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.select_related("crontab").get(name="loyalty-daily-jobs")
    assert (task.task, task.enabled, task.crontab.hour, task.crontab.minute) == (
        "loyalty.tasks.run_daily_jobs",
        True,
        "0",
        "30",
    )
    assert "loyalty-daily-jobs" in admin_client.get("/admin/django_celery_beat/periodictask/").content.decode()


def clerk(*permissions, enforce_csrf_checks=True):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_jobrun", *permissions]))
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    return client


def test_staff_with_the_permission_run_todays_jobs_with_a_csrf_checked_post(program):
    client = clerk("run_jobs")
    page = client.get(JOB_RUNS).content.decode()
    assert 'id="run-jobs"' in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(reverse("admin:loyalty_jobrun_run")).status_code == 403  # no CSRF token
    assert not JobRun.objects.exists()
    response = client.post(reverse("admin:loyalty_jobrun_run"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    # The message names the programmes that ran, nothing else the task reports (such as erased members).
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "今天的日常任务已运行，共 1 个会员体系：demo。"
    ]
    today = timezone.localdate()
    # loyalty's jobs and those registered in its daily-job registry (analytics: RFM and CLV; campaigns)
    daily = sorted([*JobRun.Job.values, "analytics_clv", "analytics_kpis", "analytics_rfm", "campaigns"])
    assert sorted(JobRun.objects.filter(as_of=today).values_list("job", flat=True)) == daily
    again = client.post(reverse("admin:loyalty_jobrun_run"), {"csrfmiddlewaretoken": token})
    assert again.status_code == 302 and JobRun.objects.count() == len(daily)  # once a day


def test_without_the_permission_there_is_no_button_and_no_run(program):
    client = clerk(enforce_csrf_checks=False)  # past the CSRF check: the permission alone refuses
    assert 'id="run-jobs"' not in client.get(JOB_RUNS).content.decode()
    assert client.post(reverse("admin:loyalty_jobrun_run")).status_code == 403
    assert not JobRun.objects.exists()


def test_a_get_runs_nothing(admin_client, program):
    assert admin_client.get(reverse("admin:loyalty_jobrun_run")).status_code == 403
    assert not JobRun.objects.exists()


def test_scheduling_screens_come_after_the_business_sections(admin_client):
    labels = [app["app_label"] for app in admin_client.get("/admin/").context["app_list"]]
    assert labels.index("django_celery_beat") > max(labels.index("members"), labels.index("loyalty"))
    assert labels[-2:] == ["django_celery_beat", "auth"] or labels[-2:] == ["auth", "django_celery_beat"]
