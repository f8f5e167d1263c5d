"""Partner API round trips served by gunicorn, 8 concurrent keep-alive clients:
`GET /api/v1/members/{no}/` and the look-ups by phone, e-mail and channel identity over a large member table.

Also checks that each look-up is one indexed query (EXPLAIN on PostgreSQL) whatever the table size.
"""

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

CLIENTS = 8
SECONDS = 8


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fill_members(count):
    """`count` members with phones, e-mails and a channel identity each; set-based on PostgreSQL."""
    from django.db import connection

    from members import services
    from members.demo import demo_members_create
    from members.models import Member

    channel = services.channel_get_or_create(code="bench-pos", name="Bench POS", kind="pos")
    existing = Member.objects.count()
    if existing >= count:
        return channel
    if connection.vendor != "postgresql":
        demo_members_create(count=count - existing, orders_per_member=0)
        # Members the bench channel sees (API.md: a channel sees its programme's members): joined through it.
        Member.objects.filter(join_channel__isnull=True).update(join_channel=channel)
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO members_member (member_no, name, phone, email, gender, city, country, language, status,
                    joined_at, join_channel_id, imported_spend, created_at, updated_at)
                SELECT 'B' || lpad(n::text, 9, '0'), '会员' || n, '+86139' || lpad(n::text, 8, '0'),
                       'bench' || n || '@example.com', 'unknown', '上海', 'CN', '', 'active',
                       now() - (n %% 1000) * interval '1 day', %s, 0, now(), now()
                FROM generate_series(1, %s) AS n
                """,
                [channel.pk, count - existing],
            )
            cursor.execute(
                """
                INSERT INTO members_channelidentity (member_id, channel_id, external_id, created_at)
                SELECT id, %s, 'ext-' || id, now() FROM members_member
                """,
                [channel.pk],
            )
            cursor.execute("ANALYZE members_member; ANALYZE members_channelidentity")
    if connection.vendor != "postgresql":
        from members.models import ChannelIdentity

        ChannelIdentity.objects.bulk_create(
            [
                ChannelIdentity(member_id=pk, channel=channel, external_id=f"ext-{pk}")
                for pk in Member.objects.values_list("pk", flat=True)
            ],
            batch_size=5000,
        )
    return channel


def _explain_uses_index(sql, params):
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return "Index" in plan and "Seq Scan" not in plan


def _lookup_plans(channel):
    from members import selectors

    plans = {}
    for label, kwargs in (
        ("phone", {"phone": "+8613900000042"}),
        ("email", {"email": "bench42@example.com"}),
    ):
        # As the API asks: among the members the calling channel may see.
        queryset = selectors.members_visible_to(channel=channel, queryset=selectors.member_list()).filter(**kwargs)
        sql, params = queryset.query.sql_with_params()
        plans[label] = _explain_uses_index(sql, params)
    from members.models import Member

    queryset = Member.objects.filter(identities__channel__code="bench-pos", identities__external_id="ext-42")
    sql, params = queryset.query.sql_with_params()
    plans["external_id"] = _explain_uses_index(sql, params)
    return plans


def _serve(context, port):
    env = {
        **os.environ,
        "DATABASE_URL": context.database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-not-secret"),
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
    }
    workers = str(max(2, (os.cpu_count() or 2) * 2))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            workers,
            "--worker-class",
            "gthread",
            "--threads",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError("gunicorn did not start")


def _hammer(port, key, paths, seconds):
    counts, errors, lock = [0], [0], threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed):
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Api-Key {key}"}
        done = failed = 0
        while time.monotonic() < stop_at:
            connection.request("GET", rng.choice(paths), headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status == 200 and json.loads(body):
                done += 1
            else:
                failed += 1
        with lock:
            counts[0] += done
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts[0], errors[0], time.perf_counter() - started


def run(context):
    from members import services
    from members.models import Member

    size = max(1000, int(1_000_000 * context.scale))
    channel = _fill_members(size)
    channel.throttle_rate = "1000000/s"
    channel.save(update_fields=["throttle_rate"])
    _api_key, key = services.api_key_create(channel=channel, scopes=["members:read"])
    sample = list(Member.objects.order_by("?").values_list("member_no", "phone", "email", "pk")[:2000])
    plans = _lookup_plans(channel)
    port = _free_port()
    server = _serve(context, port)
    seconds = max(2, SECONDS * min(1, context.scale * 10))
    try:
        paths = [f"/api/v1/members/{no}/" for no, *_rest in sample]
        done, failed, elapsed = _hammer(port, key, paths, seconds)
        yield context.result("api_member_get_8_clients", done, elapsed, errors=failed, members=size, server="gunicorn")
        for label, make in (
            ("phone", lambda row: "/api/v1/members/?" + urlencode({"phone": row[1].replace("+86", "")})),
            ("email", lambda row: "/api/v1/members/?" + urlencode({"email": row[2].upper()})),
            ("external_id", lambda row: f"/api/v1/members/?external_id=ext-{row[3]}"),
        ):
            paths = [make(row) for row in sample if row[1] and row[2]]
            done, failed, elapsed = _hammer(port, key, paths, seconds / 2)
            yield context.result(
                f"api_member_lookup_by_{label}_8_clients",
                done,
                elapsed,
                errors=failed,
                members=size,
                one_indexed_query=plans[label],
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
