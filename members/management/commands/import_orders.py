import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from members.errors import DomainError
from members.importing.orders import orders_import


class Command(BaseCommand):
    help = (
        "Load order history from a CSV (UTF-8, UTF-8 with BOM or GB18030; English or Chinese headers) or XLSX file, "
        "with the admin's rules: new orders are recorded without points (they count for tiers), recorded ones are "
        "left as they are. Prints one JSON line {new, unchanged, errors} last; exits 1 when rows failed (then nothing "
        "is imported)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
        parser.add_argument("--language", choices=["en", "zh"], help="language of the reasons (default: LANGUAGE_CODE)")
        parser.add_argument("--errors-out", help="write the rejected rows with their reasons to this CSV file")

    def handle(self, *args, file, dry_run, language=None, errors_out=None, **options):
        language = language or ("zh" if settings.LANGUAGE_CODE.startswith("zh") else "en")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        with translation.override("zh-hans" if language == "zh" else "en"):
            try:
                result = orders_import(data=path.read_bytes(), dry_run=dry_run)
            except DomainError as error:
                raise CommandError(error.message) from None
            for row in result.errors[:50]:
                self.stderr.write(f"row {row.number}: {result.describe(row)}")
            if len(result.errors) > 50:
                self.stderr.write(f"... {len(result.errors) - 50} more")
            if errors_out and result.errors:
                Path(errors_out).write_bytes(result.errors_csv(language))
            self.stdout.write(json.dumps(result.counts))
        if result.errors:
            raise SystemExit(1)
