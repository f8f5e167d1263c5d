import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from core.errors import DomainError
from members.importing.services import describe_errors, members_import


class Command(BaseCommand):
    help = (
        "Import members from a CSV (UTF-8, UTF-8 with BOM or GB18030; English or Chinese headers) or XLSX file. "
        "Prints one JSON line {new, updated, unchanged, errors} last; exits 1 when rows failed and --skip-errors "
        "was not given (then nothing is imported)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
        parser.add_argument("--skip-errors", action="store_true", help="import the good rows, report the others")
        parser.add_argument("--errors-out", help="write the rejected rows with a reason column to this CSV file")
        parser.add_argument("--program", help="the programme of the points_balance and tier columns")
        parser.add_argument("--language", choices=["en", "zh"], help="language of the reasons (default: LANGUAGE_CODE)")

    def handle(self, *args, language=None, **options):
        language = language or ("zh" if settings.LANGUAGE_CODE.startswith("zh") else "en")
        with translation.override("zh-hans" if language == "zh" else "en"):
            self._import(language=language, **options)

    def _import(self, *, file, dry_run, skip_errors, errors_out, program, language, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            result = members_import(
                data=path.read_bytes(), skip_errors=skip_errors, dry_run=dry_run, program_code=program
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        for outcome in result.errors[:50]:
            self.stderr.write(f"row {outcome.row.number}: {describe_errors(outcome.row, language, result.labels)}")
        if len(result.errors) > 50:
            self.stderr.write(f"... and {len(result.errors) - 50} more rejected rows")
        if errors_out and result.errors:
            Path(errors_out).write_bytes(result.errors_csv(language))
        self.stdout.write(json.dumps(result.counts))
        if result.errors and not skip_errors:
            raise SystemExit(1)
