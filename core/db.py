"""Small SQL helpers for the hot paths (earning, order intake), where a round trip or a compiled queryset saved
matters more than the ORM's convenience. Identifiers come from the models' metadata; values are parameters."""

import contextlib
import datetime as dt
import functools

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils import timezone


def sql_literal(value: str) -> str:
    """A constant of the code (a model choice's value) as an SQL string literal, for set-based statements that
    compare or write status and kind columns. Never for user input: that is always a parameter."""
    return "'" + str(value).replace("'", "''") + "'"


@functools.cache
def _insert_plan(model, alias):
    """Per model: the fields to insert, whether each needs the field's own adaptation (JSON), and the SQL head."""
    connection = connections[alias]
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    plan = [
        (
            field,
            field.attname,
            field.get_internal_type() == "JSONField",
            getattr(field, "auto_now", False),
            getattr(field, "auto_now_add", False),
        )
        for field in fields
    ]
    return plan, f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608


def insert_statement(instance, *, expressions=None, alias=DEFAULT_DB_ALIAS):
    """`INSERT INTO table (columns) VALUES (...)` for one unsaved instance, with its parameters.

    `expressions` maps a field name to SQL used instead of a parameter (e.g. the id of a row a CTE inserted).
    auto_now/auto_now_add fields are filled as `save()` would.
    """
    connection = connections[alias]
    plan, head = _insert_plan(type(instance), alias)
    now = None
    values, params = [], []
    for field, attname, needs_adapting, auto_now, auto_now_add in plan:
        if expressions and field.name in expressions:
            values.append(expressions[field.name])
            continue
        value = getattr(instance, attname)
        if auto_now or (auto_now_add and not value):
            now = now or timezone.now()
            value = now
            setattr(instance, attname, value)
        values.append("%s")
        params.append(field.get_db_prep_save(value, connection) if needs_adapting else value)
    return f"{head}({', '.join(values)})", params


def insert_unless_exists(instance, *, unique_fields, alias=DEFAULT_DB_ALIAS) -> bool:
    """Insert `instance` unless a row with the same `unique_fields` exists (one statement, no savepoint).
    Sets its pk and returns True when this call inserted it. A concurrent insert of the same key waits for the
    other transaction and then finds the row there."""
    connection = connections[alias]
    sql, params = insert_statement(instance, alias=alias)
    conflict = ", ".join(connection.ops.quote_name(instance._meta.get_field(name).column) for name in unique_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT ({conflict}) DO NOTHING RETURNING id", params)
        found = cursor.fetchone()
    if found is None:
        return False
    instance.pk = found[0]
    instance._state.adding = False
    return True


def sequence_values(count: int, *, sequence: str | None = None, serial_of: str | None = None) -> list[int]:
    """`count` new values of a PostgreSQL sequence, given by name or as the id sequence of table `serial_of`, in
    two round trips and one text value (fetching 100,000 one-number rows costs more than drawing them)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        if serial_of:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [serial_of])
            sequence = cursor.fetchone()[0]
        # The name as a constant: pg_get_serial_sequence() in the statement runs once per value (0.9 s for 200,000
        # values, where the values themselves take 0.1 s).
        cursor.execute(
            "SELECT string_agg(nextval(%s::regclass)::text, ',') FROM generate_series(1, %s)", [sequence, count]
        )
        return [int(value) for value in cursor.fetchone()[0].split(",")]


@contextlib.contextmanager
def session_settings(alias=DEFAULT_DB_ALIAS, **values):
    """PostgreSQL settings (`jit="off"`, `work_mem="256MB"`) for the statements of the block, restored afterwards;
    nothing elsewhere. In a transaction they are the transaction's own (`SET LOCAL`): behind a pooler in transaction
    mode (PgBouncer) they cannot stay on a server connection that another client gets next. Outside one they are the
    session's; give a planner setting that must not leak a transaction of its own (`transaction.atomic()`)."""
    connection = connections[alias]
    values = {name: value for name, value in values.items() if value is not None}
    if connection.vendor != "postgresql" or not values:
        yield
        return
    local = connection.in_atomic_block
    previous = {}
    with connection.cursor() as cursor:
        for name, value in values.items():
            cursor.execute("SELECT current_setting(%s), set_config(%s, %s, %s)", [name, name, str(value), local])
            previous[name] = cursor.fetchone()[0]
    try:
        yield
    finally:
        # After a failure that aborted an outer transaction, its rollback puts the settings back.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            for name, value in previous.items():
                cursor.execute("SELECT set_config(%s, %s, %s)", [name, value, local])


def jit_off(alias=DEFAULT_DB_ALIAS):
    """No JIT compilation for the block's statements on PostgreSQL. Bulk statements (look-ups over arrays of tens of
    thousands of keys, aggregates over millions of rows) are estimated dear enough to be compiled, and compiling
    costs more (hundreds of ms to seconds each) than it saves."""
    return session_settings(alias, jit="off")


def sqlite_datetimes_as_utc_text(apps, schema_editor, *, app_label):
    """A data migration's step: on SQLite, rewrite the datetimes that raw SQL once stored with their offset
    ("2026-09-30 23:59:00+08:00", before core.backends.sqlite3 adapted every parameter) as the ORM writes them, so
    that they compare with everything else as the same instant. Nothing to do on PostgreSQL (timestamptz)."""
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    quote, adapt = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    for model in apps.get_app_config(app_label).get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        for field in model._meta.concrete_fields:
            if field.get_internal_type() != "DateTimeField":
                continue
            column = quote(field.column)
            with connection.cursor() as cursor:
                # Identifiers from the models' metadata; only text ending in an offset (+08:00, -05:00, +00:00).
                cursor.execute(
                    f"SELECT {pk}, CAST({column} AS TEXT) FROM {table} "  # noqa: S608
                    f"WHERE {column} GLOB '*[+-][0-9][0-9]:[0-9][0-9]'"
                )
                found = cursor.fetchall()
                cursor.executemany(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
                    [(adapt(dt.datetime.fromisoformat(text)), key) for key, text in found],
                )


def insert_as_given(instances, *, alias=DEFAULT_DB_ALIAS) -> list:
    """Insert unsaved instances of one model in multi-row INSERTs, keeping every value as given, `auto_now_add`
    times too (`bulk_create` overwrites those with now; history recorded after the fact keeps its own times). An
    empty auto time is filled with now. Sets each instance's pk from `RETURNING` (PostgreSQL, SQLite 3.35+), in
    the order given. Returns the instances."""
    instances = list(instances)
    if not instances:
        return instances
    model = type(instances[0])
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 - names from the model
    returning = f" RETURNING {quote(model._meta.pk.column)}"
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    size = max(1, 30_000 // len(fields))  # parameters per statement within both databases' limits
    now = timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(instances), size):
            batch = instances[start : start + size]
            params = []
            for instance in batch:
                for field in fields:
                    value = getattr(instance, field.attname)
                    if value is None and (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)):
                        value = now
                        setattr(instance, field.attname, value)
                    params.append(field.get_db_prep_save(value, connection))
            cursor.execute(head + ", ".join([row] * len(batch)) + returning, params)
            for instance, (pk,) in zip(batch, cursor.fetchall(), strict=True):
                instance.pk = pk
                instance._state.adding, instance._state.db = False, alias
    return instances
