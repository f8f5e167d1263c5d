"""One worker process of the earning benchmark: records orders through the service layer for N seconds."""

import os
import random
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


def main(worker: int, seconds: float, channel_code: str, member_ids: str):
    import django

    django.setup()
    from decimal import Decimal

    from django.utils import timezone

    from members import services
    from members.models import Channel, Member

    channel = Channel.objects.get(code=channel_code)
    low, high = (int(part) for part in member_ids.split("-"))
    members = {member.pk: member for member in Member.objects.filter(pk__gte=low, pk__lte=high)}
    keys = list(members)
    rng = random.Random(worker)
    done = 0
    stop_at = time.monotonic() + seconds
    started = time.perf_counter()
    while time.monotonic() < stop_at:
        services.order_record(
            channel=channel,
            order_id=f"W{worker}-{done}",
            member=members[rng.choice(keys)],
            amount=Decimal(rng.randrange(1000, 50000)) / 100,
            occurred_at=timezone.now(),
        )
        done += 1
    print(f"{done} {time.perf_counter() - started:.4f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4])
