"""The order history import (`import_orders`) of a 200,000-row file into a table that already holds 1,000,000 orders
of 100,000 members in the demo programme (four tiers by spend; each account in the tier its recorded orders qualify
for), end to end: reading, cleaning, matching members (by number, phone in several spellings, e-mail) and channels
(code or name), checking recorded orders, the COPY, and the tiers of the touched accounts. Then the same file again:
every row unchanged, nothing written. PostgreSQL."""

import csv
import datetime as dt
import io
import json
import os
import random
import time
from pathlib import Path

ROWS = 200_000
EXISTING = 1_000_000
MEMBERS = 100_000
RECORDED_IN_FILE = 2_000  # rows that repeat an order already recorded, with the same values (unchanged)


def _fill(existing, members):
    """The members (as the API benchmark makes them), their accounts, and the recorded orders, set-based."""
    from django.db import connection

    from loyalty.demo import demo_program
    from members.demo import demo_channels

    demo_channels()
    program = demo_program()
    entry = program.tiers.order_by("rank").first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM members_order")
        if cursor.fetchone()[0] >= existing:
            return
        cursor.execute("DELETE FROM members_order WHERE order_id LIKE 'OLD-%%'")
        cursor.execute(
            "INSERT INTO members_member (member_no, name, phone, email, gender, city, country, language, status, "
            "joined_at, imported_spend, created_at, updated_at) "
            "SELECT 'H' || lpad(n::text, 9, '0'), 'm' || n, '+86137' || lpad(n::text, 8, '0'), "
            "CASE WHEN n %% 2 = 0 THEN 'm' || n || '@example.com' END, 'unknown', '', 'CN', '', 'active', "
            "now() - interval '3 years', 0, now(), now() FROM generate_series(1, %s) AS n ON CONFLICT DO NOTHING",
            [members],
        )
        cursor.execute(
            "INSERT INTO loyalty_account (member_id, program_id, balance, pending, lifetime_earned, lifetime_spent, "
            "tier_id, tier_since, created_at, updated_at) "
            "SELECT m.id, %s, 0, 0, 0, 0, %s, now(), now(), now() FROM members_member m "
            "WHERE NOT EXISTS (SELECT 1 FROM loyalty_account a WHERE a.member_id = m.id AND a.program_id = %s)",
            [program.pk, entry.pk, program.pk],
        )
        # Orders spread over the members, the channels and the last three years.
        cursor.execute(
            "WITH m AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM members_member), "
            "c AS (SELECT array_agg(id ORDER BY id) AS ids FROM members_channel) "
            "INSERT INTO members_order (channel_id, order_id, member_id, store, amount, refunded_amount, currency, "
            "occurred_at, status, fingerprint, created_at) "
            "SELECT c.ids[1 + g %% array_length(c.ids, 1)], 'OLD-' || g, m.id, '', "
            "((g::bigint * 7919) %% 300000) / 100.0, "
            "0, 'CNY', date_trunc('second', now() - (g %% 1095) * interval '1 day' - (g %% 86400) * interval "
            "'1 second'), 'placed', '', now() FROM generate_series(0, %s - 1) g, c "
            "JOIN m ON true WHERE m.k = g %% (SELECT COUNT(*) FROM members_member)",
            [existing],
        )
        # The accounts in the tiers their recorded orders qualify for, as a database that recorded them would have
        # them (the product's own rule, as for an imported history); otherwise the file would upgrade nearly every
        # account, as only a first history load does (the README gives that case's figure too).
        _tiers_as_recorded(cursor)
        # Vacuumed as autovacuum would have done to a table that has held its orders for a while: the visibility
        # map lets the tier windows be summed from the member index alone.
        for table in ("members_member", "members_order", "loyalty_account"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _tiers_as_recorded(cursor):
    from loyalty.history import tiers_count_history

    cursor.execute("SELECT id, member_id, channel_id, occurred_at FROM members_order WHERE order_id LIKE 'OLD-%%'")
    tiers_count_history(orders=cursor.fetchall())


def _write_file(path, rows, run):
    """A history file with Chinese headers: members by number (70%), phone in several spellings (20%) or e-mail
    (10%), channels by code or name, a few free orders, and some rows repeating recorded orders exactly."""
    from django.db import connection
    from django.utils import timezone

    from members.models import Channel, Member

    rng = random.Random(2026)
    channels = list(Channel.objects.values_list("code", "name"))
    members = list(Member.objects.filter(member_no__startswith="H").values_list("member_no", "phone", "email"))
    zone = timezone.get_default_timezone()
    now = timezone.now()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["渠道", "订单号", "会员编号", "金额", "下单时间", "门店"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.code, o.order_id, m.member_no, o.amount, o.occurred_at FROM members_order o "
            "JOIN members_channel c ON c.id = o.channel_id JOIN members_member m ON m.id = o.member_id "
            "WHERE o.order_id LIKE 'OLD-%%' ORDER BY o.id LIMIT %s",
            [RECORDED_IN_FILE],
        )
        recorded = cursor.fetchall()
    repeat_at = set(rng.sample(range(rows), len(recorded)))
    recorded_rows = iter(recorded)
    for index in range(rows):
        if index in repeat_at:
            code, order_id, member_no, amount, occurred_at = next(recorded_rows)
            writer.writerow(
                [code, order_id, member_no, amount, occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), ""]
            )
            continue
        member_no, phone, email = rng.choice(members)
        pick = rng.random()
        if pick < 0.7:
            member = member_no
        elif pick < 0.9:
            national = phone[3:]
            member = rng.choice(
                [national, f"{national[:3]} {national[3:7]} {national[7:]}", f"+86 {national[:3]}-{national[3:]}"]
            )
        else:
            member = email or member_no
        code, name = rng.choice(channels)
        amount = "0" if rng.random() < 0.01 else f"{rng.randrange(100, 300000) / 100:.2f}"
        when = (now - dt.timedelta(seconds=rng.randrange(3 * 365 * 86400))).astimezone(zone)
        writer.writerow(
            [
                code if rng.random() < 0.8 else name,
                f"R{run}-{index}",
                member,
                amount,
                when.strftime("%Y-%m-%d %H:%M:%S") if rng.random() < 0.9 else when.strftime("%Y/%m/%d %H:%M"),
                rng.choice(["", "", "SH-01", "BJ-02"]),
            ]
        )
    path.write_bytes(("\ufeff" + out.getvalue()).encode("utf-8"))


def _backend_cpu():
    """CPU seconds the database session has used so far, when the server runs on this machine (else None): the
    2-core development machine is shared, and wall time alone says little about the import's own cost."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_floor(rows):
    """Seconds the server alone takes to store `rows` orders shaped like the import's (the same table and indexes, the
    foreign keys checked in the statement), made ready beforehand in a temporary table (ids drawn from the sequence,
    64-character fingerprints, in member and time order, as the import sends them), then rolled back: the part of the
    import that no client code can shorten, on this host."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM members_channel")
        channels = cursor.fetchone()[0]
        cursor.execute("SELECT MIN(id), COUNT(*), pg_get_serial_sequence('members_order', 'id') FROM members_member")
        first, members, sequence = cursor.fetchone()
        cursor.execute(
            "CREATE TEMP TABLE order_floor ON COMMIT DROP AS SELECT nextval(%s::regclass) AS id, c, "
            "'FLOOR-' || g AS order_id, m, a, t, lpad(g::text, 64, '0') AS fingerprint FROM (SELECT g, "
            "(%s::bigint[])[1 + g %% %s] AS c, %s + (g * 7919) %% %s AS m, (g %% 300000) / 100.0 AS a, "
            "now() - (g %% 1095) * interval '1 day' AS t "
            "FROM generate_series(1, %s) g) o ORDER BY m, t",
            [sequence, channels, len(channels), first, members, rows],
        )
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO members_order (id, channel_id, order_id, member_id, store, amount, refunded_amount, currency, "
            "occurred_at, status, fingerprint, created_at) "
            "SELECT id, c, order_id, m, '', a, 0, 'CNY', t, 'placed', fingerprint, now() FROM order_floor"
        )
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def run(context):
    from django.core.management import call_command
    from django.db import connection

    from loyalty.models import TierChange
    from members.models import Order

    if connection.vendor != "postgresql":
        return
    rows = max(1000, int(ROWS * context.scale))
    existing = max(10_000, int(EXISTING * context.scale))
    members = max(1000, int(MEMBERS * context.scale))
    started = time.perf_counter()
    _fill(existing, members)
    setup = time.perf_counter() - started
    before = Order.objects.count()
    run_id = int(time.time())
    path = context.workdir / f"order_history_{rows}.csv"
    _write_file(path, rows, run_id)
    upgrades = TierChange.objects.filter(reason="upgrade").count()
    for label in ("new", "again"):
        out = io.StringIO()
        backend = _backend_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        call_command("import_orders", str(path), stdout=out, stderr=io.StringIO())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        backend = None if backend is None else _backend_cpu() - backend
        yield context.result(
            f"order_import_{label}",
            rows,
            seconds,
            orders_before=before,
            counts=json.loads(out.getvalue().strip().splitlines()[-1]),
            orders_after=Order.objects.count(),
            upgrades=TierChange.objects.filter(reason="upgrade").count() - upgrades,
            setup_seconds=round(setup, 1),
            python_cpu_seconds=round(cpu, 1),
            postgres_cpu_seconds=None if backend is None else round(backend, 1),
            load_average=round(os.getloadavg()[0], 1),
            target_per_second=20000,
        )
    # What the server alone needs to store the new orders, for the figures above to be read against.
    new = Order.objects.filter(order_id__startswith=f"R{run_id}-").count()
    yield context.result(
        "order_import_database_floor", new, _database_floor(new), load_average=round(os.getloadavg()[0], 1)
    )
