"""Import and export of members in the admin (filled in by the import work)."""


class MemberImportExportMixin:
    pass
