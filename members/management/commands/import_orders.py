import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from core.errors import DomainError
from members.importing.orders import HistoryCSV, OrderHistoryResource


class Command(BaseCommand):
    help = (
        "Load order history from a CSV (UTF-8, UTF-8 with BOM or GB18030; English or Chinese headers) or XLSX file, "
        "with the admin's rules: new orders are recorded without points, recorded ones are left as they are. Prints "
        "one JSON line {new, unchanged, errors} last; exits 1 when rows failed (then nothing is imported)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
        parser.add_argument("--language", choices=["en", "zh"], help="language of the reasons (default: LANGUAGE_CODE)")

    def handle(self, *args, file, dry_run, language=None, **options):
        language = language or ("zh" if settings.LANGUAGE_CODE.startswith("zh") else "en")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        with translation.override("zh-hans" if language == "zh" else "en"):
            try:
                dataset = HistoryCSV().create_dataset(path.read_bytes())  # CSV or XLSX, told apart by content
            except DomainError as error:
                raise CommandError(error.message) from None
            result = OrderHistoryResource().import_data(
                dataset, dry_run=dry_run, use_transactions=True, rollback_on_validation_errors=True
            )
            for error in result.base_errors:
                raise CommandError(str(error.error))
            failed = [*result.invalid_rows, *(row for row in result.rows if row.errors)]
            for row in result.invalid_rows[:50]:
                messages = "; ".join(
                    f"{field}: {' '.join(errors)}" if field != "__all__" else " ".join(errors)
                    for field, errors in row.error_dict.items()
                )
                self.stderr.write(f"row {row.number + 1}: {messages}")
            for row in [row for row in result.rows if row.errors][:50]:
                self.stderr.write(f"row {row.errors[0].number + 1}: {row.errors[0].error}")
            totals = result.totals
            self.stdout.write(json.dumps({"new": totals["new"], "unchanged": totals["skip"], "errors": len(failed)}))
        if failed:
            raise SystemExit(1)
