from django.db import migrations


def create_sequence(apps, schema_editor):
    # PostgreSQL hands out member numbers from a sequence: no lock, no reuse, cheap in batches for imports.
    # SQLite uses the MemberNumberCounter row instead (see services.member_numbers_allocate).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE SEQUENCE IF NOT EXISTS members_member_no_seq START 1")


def drop_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP SEQUENCE IF EXISTS members_member_no_seq")


class Migration(migrations.Migration):
    dependencies = [("members", "0001_initial")]

    operations = [migrations.RunPython(create_sequence, drop_sequence)]
