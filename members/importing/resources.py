"""django-import-export resources for the export of members, with English or Chinese headers.
(Imports go through members.importing.services, which is set-based; see README "Import and export".)"""

from import_export import fields, widgets

from members.masking import mask_email, mask_phone
from members.models import Member
from members.spreadsheets import FormulaSafeResource

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


class MemberExport(FormulaSafeResource):
    """Phone and e-mail are masked unless the exporting user may see personal data (`mask_personal_data`)."""

    def __init__(self, *, mask_personal_data: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.mask_personal_data = mask_personal_data

    def dehydrate_phone(self, member):
        return mask_phone(member.phone) if self.mask_personal_data else member.phone

    def dehydrate_email(self, member):
        return mask_email(member.email) if self.mask_personal_data else member.email


def _resource(language: str):
    labels = COLUMN_LABELS[language]
    declared = {}
    for key, attribute, chinese in EXPORT_COLUMNS:
        header = (chinese or labels.get(key, key)) if language == "zh" else key
        # Amounts as numbers (an XLSX cell Excel can sum), not as text.
        widget = widgets.DecimalWidget(coerce_to_string=False) if key == "total_spend" else None
        declared[key] = fields.Field(attribute=attribute, column_name=header, widget=widget)

    class Meta:
        model = Member
        fields = [key for key, _attribute, _chinese in EXPORT_COLUMNS]
        export_order = fields

    name = "MemberExportResourceZh" if language == "zh" else "MemberExportResource"
    return type(name, (MemberExport,), {**declared, "Meta": Meta, "__module__": __name__})


MemberExportResource = _resource("en")
MemberExportResource.__doc__ = "Members with English headers."
MemberExportResourceZh = _resource("zh")
MemberExportResourceZh.__doc__ = "会员（中文表头）"


def _display_name(cls):
    return "English headers" if cls is MemberExportResource else "中文表头"


MemberExportResource.get_display_name = classmethod(_display_name)
MemberExportResourceZh.get_display_name = classmethod(_display_name)
