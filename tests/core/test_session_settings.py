"""core.db.session_settings(): planner settings for a block of statements, and nowhere else. Behind a pooler in
transaction mode (PgBouncer) the server connection goes to another client as soon as a transaction ends, so a setting
made in a transaction must end with it."""

import contextlib

import pytest
from django.db import connection, transaction

from core.db import session_settings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _work_mem():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem')")
        return cursor.fetchone()[0]


def test_a_setting_is_the_blocks_own_and_restored_after_it():
    before = _work_mem()
    with session_settings(work_mem="77MB"):
        assert _work_mem() == "77MB"
    assert _work_mem() == before
    with transaction.atomic(), session_settings(work_mem="78MB"):
        assert _work_mem() == "78MB"
    assert _work_mem() == before


def test_a_setting_made_in_a_transaction_ends_with_it_even_when_its_block_is_never_left():
    """A block abandoned inside a transaction (its restore never runs): the commit ends the setting all the same."""
    before = _work_mem()
    with transaction.atomic():
        abandoned = contextlib.ExitStack()
        abandoned.enter_context(session_settings(work_mem="79MB"))
        assert _work_mem() == "79MB"
    assert _work_mem() == before
    abandoned.pop_all()
