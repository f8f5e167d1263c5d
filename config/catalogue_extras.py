"""Strings operators see that come from libraries whose zh-hans catalogue leaves them untranslated
(django-import-export's export and import pages). Listed here so `make messages` keeps them in our catalogue,
which takes precedence over the library's."""

from django.utils.translation import gettext_noop

LIBRARY_STRINGS = [
    gettext_noop("Select all"),
    gettext_noop("Resource"),
    gettext_noop("Value could not be parsed."),
    gettext_noop('Select at least 1 field for "%(resource_name)s" to export'),
    gettext_noop(
        "%(exc_name)s encountered while trying to read file. Ensure you have chosen the correct format for the file."
    ),
    gettext_noop("No valid data to import. Ensure your file has the correct headers or data for import."),
]
