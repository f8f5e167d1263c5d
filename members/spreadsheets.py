"""Files the admin writes for spreadsheets (CSV, XLSX): one place that keeps a cell from running as a formula.

Excel and WPS treat a cell that starts with =, +, - or @ (also after a tab or a carriage return) as a formula: a
member named `=HYPERLINK("http://evil", "click")` becomes a link in the operator's sheet. Every export writes its
cells through `escape_formula` (the CSV writer below, and `FormulaSafeResource` for django-import-export)."""

import csv
import re

from import_export import resources

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def escape_formula(value):
    """Text that a spreadsheet would run as a formula gets a leading single quote, so it is shown as text.
    Anything that is not text (numbers, dates) and text that is only a number ("-5.00", "+8613800138000") is
    returned unchanged: a plain number cannot run anything, and negative amounts stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _FormulaSafeWriter:
    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row):
        return self._writer.writerow([escape_formula(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(out, **options):
    """`csv.writer` whose every cell goes through `escape_formula`."""
    return _FormulaSafeWriter(out, **options)


class FormulaSafeResource(resources.ModelResource):
    """A django-import-export resource whose exported cells go through `escape_formula` (CSV and XLSX alike).
    Its own escaping (IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT) drops the "=" and turns every cell into text,
    negative numbers included, so it stays off."""

    def export_field(self, field, instance, **kwargs):
        return escape_formula(super().export_field(field, instance, **kwargs))
