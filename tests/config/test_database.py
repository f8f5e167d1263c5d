"""The PostgreSQL connection is set up for the hot paths: repeated statements are prepared, not re-planned."""

import pytest
from django.db import connection


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_statement_run_again_and_again_is_prepared_once_on_the_server():
    sql = "SELECT count(*) FROM members_member WHERE phone = %s"
    with connection.cursor() as cursor:
        for _ in range(6):
            cursor.execute(sql, ["+8613800138000"])
            cursor.fetchone()
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["%members_member%"])
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("phone = $1" in statement for statement in prepared)
