"""Earning through the service layer (lock, rules, lot, ledger row, account, tier check) from 2 worker processes,
against pgbench running the minimal SQL of an order (one insert, one update, one transaction) with 2 clients.
Also counts the SQL statements one order costs."""

import os
import re
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

WORKERS = 2
MEMBERS = 2000
PGBENCH_SCRIPT = """\\set member random(1, {members})
BEGIN;
INSERT INTO bench_minimal_order (member_id, amount, occurred_at) VALUES (:member, 123.45, now());
UPDATE bench_minimal_account SET balance = balance + 123 WHERE id = :member;
END;
"""


def _setup():
    from django.db import connection
    from django.utils import timezone

    from loyalty.demo import demo_program
    from members import services
    from members.demo import demo_members_create
    from members.models import Member

    channel = services.channel_get_or_create(code="bench-shop", name="Bench shop", kind="online_shop")
    demo_program()
    if Member.objects.count() < MEMBERS:
        demo_members_create(count=MEMBERS, orders_per_member=0)
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True)[:MEMBERS])
    # Warm every account so the timed loop measures earning, not sign-up.
    for index, member in enumerate(Member.objects.filter(pk__in=ids)):
        services.order_record(
            channel=channel, order_id=f"warm-{index}", member=member, amount=Decimal("1.00"), occurred_at=timezone.now()
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return channel, ids


def _statements_per_order(channel, member_id):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from members import services
    from members.models import Member

    member = Member.objects.get(pk=member_id)
    with CaptureQueriesContext(connection) as queries:
        services.order_record(
            channel=channel, order_id="count-me", member=member, amount=Decimal("88.00"), occurred_at=timezone.now()
        )
    statements = [query["sql"] for query in queries.captured_queries]
    return len(statements), len([sql for sql in statements if "SAVEPOINT" not in sql])


def _pgbench(context, seconds):
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_minimal_order (id bigserial PRIMARY KEY, member_id bigint, "
            "amount numeric(14,2), occurred_at timestamptz)"
        )
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_minimal_account (id bigint PRIMARY KEY, balance bigint)")
        cursor.execute("TRUNCATE bench_minimal_order, bench_minimal_account")
        cursor.execute("INSERT INTO bench_minimal_account SELECT n, 0 FROM generate_series(1, %s) AS n", [MEMBERS])
    db = connection.settings_dict
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT.format(members=MEMBERS))
    command = [
        "pgbench",
        "-n",
        "-c",
        "2",
        "-j",
        "2",
        "-T",
        str(int(seconds)),
        "-f",
        script.name,
        "-h",
        db.get("HOST") or "127.0.0.1",
        "-p",
        str(db.get("PORT") or 5432),
        "-U",
        db["USER"],
        db["NAME"],
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    match = re.search(r"tps = ([\d.]+)", output)
    return float(match.group(1)) if match else None


def run(context):
    channel, ids = _setup()
    statements, without_savepoints = _statements_per_order(channel, ids[0])
    seconds = max(3.0, 15 * min(1.0, context.scale))
    env = {**os.environ, "DATABASE_URL": context.database_url(), "LOG_LEVEL": "WARNING"}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.earning_worker",
                str(worker),
                str(seconds),
                channel.code,
                f"{ids[0]}-{ids[-1]}",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in range(WORKERS)
    ]
    total, elapsed = 0, 0.0
    for process in processes:
        out, _err = process.communicate(timeout=seconds + 120)
        if process.returncode != 0:
            raise RuntimeError(f"earning worker failed: {out}")
        done, took = out.split()
        total += int(done)
        elapsed = max(elapsed, float(took))
    service_rate = total / elapsed
    pgbench_rate = _pgbench(context, seconds)
    yield context.result(
        "earning_orders_service_2_processes",
        total,
        elapsed,
        statements_per_order=statements,
        statements_without_savepoints=without_savepoints,
        pgbench_minimal_2_clients_per_second=pgbench_rate,
        ratio_to_pgbench=round(service_rate / pgbench_rate, 3) if pgbench_rate else None,
        target_ratio=0.333,
    )
