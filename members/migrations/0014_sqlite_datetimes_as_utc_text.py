from django.db import migrations

from core.db import sqlite_datetimes_as_utc_text


def rewrite(apps, schema_editor):
    sqlite_datetimes_as_utc_text(apps, schema_editor, app_label="members")


class Migration(migrations.Migration):
    """On SQLite, datetimes that raw SQL stored with their offset become the UTC text the ORM writes."""

    dependencies = [("members", "0013_merged_away_contacts_stay_findable")]

    operations = [migrations.RunPython(rewrite, migrations.RunPython.noop, elidable=True)]
