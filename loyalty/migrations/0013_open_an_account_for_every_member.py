"""Members who arrived before every arrival opened an account (imported ones above all) get theirs now: in the entry
tier of their join channel's programme, or of the only active programme. Set-based SQL, whatever the number."""

from django.db import migrations
from django.utils import timezone


def open_accounts(apps, schema_editor):
    from loyalty.ledger import accounts_open_sql

    program_model, tier_model = apps.get_model("loyalty", "Program"), apps.get_model("loyalty", "Tier")
    programs = list(program_model.objects.filter(is_active=True).order_by("pk"))
    now = timezone.now()
    with schema_editor.connection.cursor() as cursor:
        for program in programs:
            tier = tier_model.objects.filter(program=program).order_by("rank").first()
            if tier is not None:
                accounts_open_sql(
                    cursor, program_id=program.pk, tier_id=tier.pk, now=now, by_channel=len(programs) > 1
                )


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0012_gift_shipping_address_and_operator_labels")]

    operations = [migrations.RunPython(open_accounts, migrations.RunPython.noop)]
