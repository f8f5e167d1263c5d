"""Small SQL helpers for the hot paths, where a round trip saved matters more than the ORM's convenience."""

from django.db import connection
from django.utils import timezone


def insert_statement(instance, *, expressions=None):
    """`INSERT INTO table (columns) VALUES (...)` for one unsaved instance, with its parameters.

    `expressions` maps a field name to SQL used instead of a parameter (e.g. the id of a row a CTE inserted).
    auto_now/auto_now_add fields are filled as `save()` would.
    """
    expressions = expressions or {}
    now = timezone.now()
    columns, values, params = [], [], []
    for field in instance._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in expressions:
            values.append(expressions[field.name])
            continue
        auto_now_add = getattr(field, "auto_now_add", False) and not getattr(instance, field.attname)
        if getattr(field, "auto_now", False) or auto_now_add:
            setattr(instance, field.attname, now)
        values.append("%s")
        params.append(field.get_db_prep_save(getattr(instance, field.attname), connection))
    table = connection.ops.quote_name(instance._meta.db_table)
    # Identifiers come from the model's metadata; values are parameters.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})", params  # noqa: S608


def insert_unless_exists(instance, *, unique_fields) -> bool:
    """Insert `instance` unless a row with the same `unique_fields` exists (one statement, no savepoint).
    Sets its pk and returns True when this call inserted it. A concurrent insert of the same key waits for the
    other transaction and then finds the row there."""
    sql, params = insert_statement(instance)
    conflict = ", ".join(connection.ops.quote_name(instance._meta.get_field(name).column) for name in unique_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT ({conflict}) DO NOTHING RETURNING id", params)
        found = cursor.fetchone()
    if found is None:
        return False
    instance.pk = found[0]
    instance._state.adding = False
    return True
