"""One worker process of the campaign delivery benchmark: delivers the batches of an id range, as the Celery batch
task does (each batch takes its rows with SKIP LOCKED, so two processes share the range)."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


def main(campaign_id: int, first: int, last: int, worker: int, workers: int):
    import datetime as dt
    from zoneinfo import ZoneInfo

    import django

    django.setup()
    from campaigns import sending

    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=10)  # outside the quiet hours
    starts = list(range(first, last + 1, sending.BATCH_SIZE))
    for start in starts[worker::workers]:
        sending.campaign_batch_deliver(
            campaign_id=campaign_id, id_from=start, id_to=min(start + sending.BATCH_SIZE - 1, last), now=now
        )


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:6]))
