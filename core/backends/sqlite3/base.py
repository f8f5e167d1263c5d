"""Django's SQLite backend, with every datetime parameter of every statement written as Django writes a
DateTimeField (`ops.adapt_datetimefield_value`: naive text in the connection's time zone, UTC here).

SQLite has no timestamp type: it stores and compares datetimes as text. The ORM adapts a DateTimeField's values
itself, but a datetime passed as a parameter of raw SQL (the hot paths' inserts, set-based jobs, windows of spend
and KPIs) reaches the sqlite3 module, whose adapter keeps the value's offset ("2026-09-30 23:59:00+08:00"). Such
text neither equals nor sorts with the UTC text the ORM writes for the same instant. Adapting every parameter here,
once, makes every raw statement store and compare like with like, whatever code built it.
"""

import datetime as dt
from collections.abc import Mapping

from django.db.backends.sqlite3 import base


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    # Set by DatabaseWrapper.create_cursor: the connection's ops.adapt_datetimefield_value.
    adapt_datetime = None

    def _adapted(self, params):
        adapt = self.adapt_datetime
        if params is None:
            return None
        if isinstance(params, Mapping):
            return {name: adapt(value) if isinstance(value, dt.datetime) else value for name, value in params.items()}
        return [adapt(value) if isinstance(value, dt.datetime) else value for value in params]

    def execute(self, query, params=None):
        return super().execute(query, self._adapted(params))

    def executemany(self, query, param_list):
        return super().executemany(query, (self._adapted(params) for params in param_list))


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        cursor.adapt_datetime = self.ops.adapt_datetimefield_value
        return cursor
