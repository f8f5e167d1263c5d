"""Fit the CLV models for a programme and score its members (the service behind `fit_clv` and the nightly job).

1. Per member, in one SQL statement over the programme's orders up to `as_of` (days in its time zone): the order
   days; `x` = order days after the first, `t_x` and `T` = weeks from the first order day to the last order day and
   to `as_of`, the mean amount of the repeat days, and the spend so far.
2. BG/NBD and Gamma-Gamma fitted by maximum likelihood (clv_models), the fit stored in ClvFit.
3. P(alive), expected purchases over 52 weeks, expected average spend and the discounted CLV per member, with
   numpy over all members at once, written in one upsert (COPY into a temporary table on PostgreSQL).
"""

import datetime as dt
import io
import time

import numpy as np
from django.db import connection, transaction

from . import clv_models
from .models import ClvFit
from .sql import day_start, local_day_number

HORIZON_WEEKS = 52
BATCH = 5000


def member_summaries(*, program, as_of: dt.date) -> dict:
    """numpy arrays: member_id, x, t_x, T (weeks), repeat mean amount (0 when x = 0), spend so far."""
    end = day_start(program, as_of + dt.timedelta(days=1))
    day_sql, day_params = local_day_number("o.occurred_at", program)
    as_of_number = (as_of - dt.date(1970, 1, 1)).days
    sql = (
        "SELECT d.member_id, COUNT(*) - 1, MIN(d.day), MAX(d.day), "  # noqa: S608 (fragments are ours)
        "SUM(d.amount), SUM(CASE WHEN d.day > d.first_day THEN d.amount ELSE 0 END) "
        "FROM (SELECT e.member_id, e.day, e.amount, MIN(e.day) OVER (PARTITION BY e.member_id) AS first_day FROM "
        f"(SELECT o.member_id, {day_sql} AS day, SUM(o.amount) AS amount FROM members_order o "
        "JOIN loyalty_channelprogram cp ON cp.channel_id = o.channel_id "
        "WHERE cp.program_id = %s AND o.occurred_at < %s GROUP BY o.member_id, 2) e) d "
        "GROUP BY d.member_id ORDER BY d.member_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*day_params, program.pk, end])
        rows = cursor.fetchall()
    if not rows:
        empty = np.zeros(0)
        return {"member_id": empty.astype(np.int64), "x": empty, "t_x": empty, "T": empty, "m": empty, "spend": empty}
    data = np.array(rows, dtype=float)
    x = data[:, 1]
    return {
        "member_id": data[:, 0].astype(np.int64),
        "x": x,
        "t_x": (data[:, 3] - data[:, 2]) / 7.0,
        "T": (as_of_number - data[:, 2]) / 7.0,
        "m": np.divide(data[:, 5], x, out=np.zeros_like(x), where=x > 0),
        "spend": data[:, 4],
    }


def clv_fit(*, program, as_of: dt.date) -> ClvFit:
    """Fit both models on the programme's members as of the day, store the fit and the members' scores."""
    started = time.monotonic()
    summary = member_summaries(program=program, as_of=as_of)
    x, t_x, T, m = summary["x"], summary["t_x"], summary["T"], summary["m"]
    fit = ClvFit(
        program=program,
        as_of=as_of,
        members=len(x),
        repeat_members=int(np.sum(x > 0)),
        monthly_discount_rate=program.monthly_discount_rate,
    )
    if fit.repeat_members < 2 or np.sum(m > 0) < 2:
        fit.message = "Too few members with repeat orders to fit the models."
        fit.seconds = time.monotonic() - started
        fit.save()
        return fit
    bgnbd = clv_models.bgnbd_fit(x, t_x, T)
    spend = clv_models.gamma_gamma_fit(x, m)
    fit.r, fit.alpha, fit.a, fit.b = (bgnbd.params[name] for name in ("r", "alpha", "a", "b"))
    fit.bgnbd_log_likelihood, fit.bgnbd_converged = bgnbd.log_likelihood, bgnbd.converged
    fit.p, fit.q, fit.v = (spend.params[name] for name in ("p", "q", "v"))
    fit.gamma_gamma_log_likelihood, fit.gamma_gamma_converged = spend.log_likelihood, spend.converged
    fit.message = f"BG/NBD: {bgnbd.message}; Gamma-Gamma: {spend.message}"[:300]
    scores = member_predictions(fit, x=x, t_x=t_x, T=T, m=m, horizon_weeks=HORIZON_WEEKS)
    with transaction.atomic():
        fit.seconds = time.monotonic() - started
        fit.save()
        scores_store(program=program, as_of=as_of, summary=summary, scores=scores)
    fit.seconds = time.monotonic() - started
    ClvFit.objects.filter(pk=fit.pk).update(seconds=fit.seconds)
    return fit


def member_predictions(fit: ClvFit, *, x, t_x, T, m, horizon_weeks: float) -> dict:
    """P(alive), expected purchases within the horizon, expected average spend and discounted CLV (numpy arrays)."""
    bgnbd = (fit.r, fit.alpha, fit.a, fit.b)
    spend = clv_models.expected_average_spend((fit.p, fit.q, fit.v), x, m)
    value, purchases = clv_models.discounted_value(
        bgnbd, spend, x, t_x, T, horizon_weeks=horizon_weeks, monthly_rate=float(fit.monthly_discount_rate)
    )
    return {
        "p_alive": clv_models.p_alive(bgnbd, x, t_x, T),
        "expected_purchases": purchases,
        "expected_average_spend": spend,
        "clv": value,
    }


def member_clv(fit: ClvFit, *, x: int, t_x: float, T: float, m: float, horizon_weeks: float) -> dict:
    """One member's predictions (the member endpoint's horizon may differ from the stored 52 weeks)."""
    arrays = member_predictions(
        fit, x=np.array([float(x)]), t_x=np.array([t_x]), T=np.array([T]), m=np.array([m]), horizon_weeks=horizon_weeks
    )
    return {name: float(values[0]) for name, values in arrays.items()}


COLUMNS = [
    "member_id",
    "program_id",
    "clv_as_of",
    "x",
    "t_x",
    "T",
    "repeat_mean_amount",
    "value_so_far",
    "p_alive",
    "expected_purchases",
    "expected_average_spend",
    "clv",
]


def _binary_copy(columns) -> bytes:
    """PostgreSQL's binary COPY of (name, numpy type, values) columns, built by numpy in one pass: formatting a
    million rows as text costs seconds, this costs milliseconds."""
    fields = [("count", ">i2")]
    for name, kind, _values in columns:
        fields += [(f"{name}_length", ">i4"), (name, kind)]
    rows = np.zeros(len(columns[0][2]), dtype=fields)
    rows["count"] = len(columns)
    for name, kind, values in columns:
        rows[f"{name}_length"] = np.dtype(kind).itemsize
        rows[name] = values
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    return header + rows.tobytes() + b"\xff\xff"


def scores_store(*, program, as_of: dt.date, summary: dict, scores: dict) -> int:
    """Upsert every member's CLV figures in one statement (PostgreSQL: from a temporary table filled by a binary
    COPY; the table's free space per page (migration 0005) lets the nightly rewrite of the same rows stay in place)."""
    count = len(summary["member_id"])
    names = [
        "member_id",
        "x",
        "t_x",
        "T",
        "repeat_mean_amount",
        "value_so_far",
        "p_alive",
        "expected_purchases",
        "expected_average_spend",
        "clv",
    ]
    values = [
        summary["member_id"],
        summary["x"],
        summary["t_x"],
        summary["T"],
        summary["m"],
        summary["spend"],
        scores["p_alive"],
        scores["expected_purchases"],
        scores["expected_average_spend"],
        scores["clv"],
    ]
    quoted = ", ".join(connection.ops.quote_name(column) for column in COLUMNS)
    updates = ", ".join(
        f"{connection.ops.quote_name(column)} = excluded.{connection.ops.quote_name(column)}" for column in COLUMNS[2:]
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            kinds = [">i8", ">i4", *[">f8"] * 8]
            types = ["bigint", "integer", *["double precision"] * 8]
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS clv_scores ("
                + ", ".join(f"{connection.ops.quote_name(n)} {t}" for n, t in zip(names, types, strict=True))
                + ") ON COMMIT DROP"
            )
            data = _binary_copy([(n, k, v) for n, k, v in zip(names, kinds, values, strict=True)])
            raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
            with raw.copy(
                f"COPY clv_scores ({', '.join(connection.ops.quote_name(n) for n in names)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                for start in range(0, len(data), 1 << 22):
                    copy.write(data[start : start + (1 << 22)])
            money = {"repeat_mean_amount", "value_so_far", "expected_average_spend", "clv"}
            selected = ", ".join(
                f"{connection.ops.quote_name(n)}::numeric(14, 2)" if n in money else connection.ops.quote_name(n)
                for n in names[1:]
            )
            cursor.execute(
                f"INSERT INTO analytics_memberscore ({quoted}) "  # noqa: S608
                f"SELECT member_id, %s, %s, {selected} FROM clv_scores "
                f"ON CONFLICT (member_id, program_id) DO UPDATE SET {updates}",
                [program.pk, as_of],
            )
            cursor.execute("DROP TABLE clv_scores")
        else:
            marks = ", ".join(["%s"] * len(COLUMNS))
            text = io.StringIO()
            if count:
                formats = ["%d", "%d", "%.6f", "%.6f", "%.2f", "%.2f", "%.6f", "%.6f", "%.2f", "%.2f"]
                table = np.column_stack([np.asarray(column, dtype=float) for column in values])
                np.savetxt(text, table, fmt=formats, delimiter="\t")
            rows = (line.split("\t") for line in text.getvalue().splitlines())
            sql = (
                f"INSERT INTO analytics_memberscore ({quoted}) VALUES ({marks}) "  # noqa: S608
                f"ON CONFLICT (member_id, program_id) DO UPDATE SET {updates}"
            )
            batch = []
            for row in rows:
                batch.append([int(row[0]), program.pk, as_of, int(row[1]), *row[2:]])
                if len(batch) >= BATCH:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
        # Members scored on an earlier fit who have no order up to this day any more keep no stale CLV.
        cursor.execute(
            "UPDATE analytics_memberscore SET clv_as_of = NULL, p_alive = NULL, expected_purchases = NULL, "
            "expected_average_spend = NULL, clv = NULL WHERE program_id = %s AND clv_as_of <> %s",
            [program.pk, as_of],
        )
    return count
