"""The loyalty programme in the admin, by sub-domain. Thin: every change calls a service; domain errors are shown
on the form. Importing the package (admin autodiscovery) registers every model admin."""

from . import accounts, badges, mall, member_pages, programme  # noqa: F401
