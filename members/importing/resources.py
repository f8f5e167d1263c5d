"""django-import-export resources for the export of members, with English or Chinese headers.
(Imports go through members.importing.services, which is set-based; see README "Import and export".)"""

from import_export import fields, resources

from members.models import Member

from .engine import COLUMN_LABELS

EXPORT_COLUMNS = [
    ("member_no", "member_no", "会员编号"),
    ("name", "name", None),
    ("phone", "phone", None),
    ("email", "email", None),
    ("gender", "gender", None),
    ("birthday", "birthday", None),
    ("city", "city", None),
    ("channel", "join_channel__name", None),
    ("status", "status", "状态"),
    ("joined_at", "joined_at", None),
    ("total_spend", "imported_spend", None),
]


def _resource(language: str):
    labels = COLUMN_LABELS[language]
    declared = {}
    for key, attribute, chinese in EXPORT_COLUMNS:
        header = (chinese or labels.get(key, key)) if language == "zh" else key
        declared[key] = fields.Field(attribute=attribute, column_name=header)

    class Meta:
        model = Member
        fields = [key for key, _attribute, _chinese in EXPORT_COLUMNS]
        export_order = fields

    name = "MemberExportResourceZh" if language == "zh" else "MemberExportResource"
    return type(name, (resources.ModelResource,), {**declared, "Meta": Meta, "__module__": __name__})


MemberExportResource = _resource("en")
MemberExportResource.__doc__ = "Members with English headers (phone and e-mail as stored)."
MemberExportResourceZh = _resource("zh")
MemberExportResourceZh.__doc__ = "会员（中文表头）"


def _display_name(cls):
    return "English headers" if cls is MemberExportResource else "中文表头"


MemberExportResource.get_display_name = classmethod(_display_name)
MemberExportResourceZh.get_display_name = classmethod(_display_name)
