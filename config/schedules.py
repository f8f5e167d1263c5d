"""Every Celery beat schedule of the product, in one place (django-celery-beat shows them to staff, who may
change them in the admin)."""

from celery.schedules import crontab

CELERY_BEAT_SCHEDULE = {
    "loyalty-daily-jobs": {
        "task": "loyalty.tasks.run_daily_jobs",
        "schedule": crontab(hour=0, minute=30),
    },
    "campaigns-tick": {
        "task": "campaigns.tasks.campaigns_tick",
        "schedule": crontab(minute="*/5"),
    },
}
