"""Leave room in each page of loyalty_account for the new version of a row, so that the balance update of every
earning stays a HOT update (no index entry written) instead of touching the account's four indexes."""

from django.db import migrations


def set_fillfactor(apps, schema_editor, value=80):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE loyalty_account SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_account RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0007_hot_path_indexes")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
