"""django-import-export resources and formats for the export of members, with English or Chinese headers.
(Imports go through members.importing.services, which is set-based; see README "Import and export".)

Headers and values follow the chosen language together (`性别` says 女, `gender` says female), and both header sets
are ones the import reads back. Times are in the programme's time zone (the project's TIME_ZONE, which a programme
defaults to), without a zone suffix, as Excel expects; amounts are numbers in XLSX. A CSV is UTF-8 with a BOM (what
Excel on Chinese Windows needs to recognise UTF-8) or GB18030, as chosen in the export form."""

from django.utils import timezone, translation
from import_export import fields
from import_export.formats.base_formats import CSV, XLSX

from members.masking import mask_email, mask_phone
from members.models import Member
from members.spreadsheets import FormulaSafeResource

# key, English header, Chinese header (each one a header the import recognises)
EXPORT_COLUMNS = [
    ("member_no", "member_no", "会员编号"),
    ("name", "name", "姓名"),
    ("phone", "phone", "手机号"),
    ("email", "email", "邮箱"),
    ("gender", "gender", "性别"),
    ("birthday", "birthday", "生日"),
    ("city", "city", "城市"),
    ("channel", "channel", "注册渠道"),
    ("status", "status", "状态"),
    ("joined_at", "joined_at", "注册时间"),
    ("total_spend", "total_spend", "累计消费"),
]


class _MemberExport(FormulaSafeResource):
    """Phone and e-mail are masked unless the exporting user may see personal data (`mask_personal_data`); cells
    that are text go through the formula escaping (numbers and dates stay what they are)."""

    language = "en"

    def __init__(self, *, mask_personal_data: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.mask_personal_data = mask_personal_data
        # The status and gender labels in the file's language, whatever the operator's page is in.
        with translation.override("zh-hans" if self.language == "zh" else "en"):
            self._labels = {
                "status": {value: str(label) for value, label in Member.Status.choices},
                "gender": {value: str(label) for value, label in Member.Gender.choices},
            }

    def get_queryset(self):
        return super().get_queryset().select_related("join_channel")

    def dehydrate_phone(self, member):
        return (mask_phone(member.phone) if self.mask_personal_data else member.phone) or ""

    def dehydrate_email(self, member):
        return (mask_email(member.email) if self.mask_personal_data else member.email) or ""

    def dehydrate_gender(self, member):
        return self._labels["gender"].get(member.gender, member.gender) if self.language == "zh" else member.gender

    def dehydrate_status(self, member):
        return self._labels["status"].get(member.status, member.status) if self.language == "zh" else member.status

    def dehydrate_channel(self, member):
        return member.join_channel.name if member.join_channel_id else ""

    def dehydrate_birthday(self, member):
        return member.birthday or ""

    def dehydrate_joined_at(self, member):
        return timezone.localtime(member.joined_at).replace(tzinfo=None, microsecond=0)

    def dehydrate_total_spend(self, member):
        return member.imported_spend


def _resource(language: str):
    declared = {
        key: fields.Field(attribute=key, column_name=chinese if language == "zh" else english, readonly=True)
        for key, english, chinese in EXPORT_COLUMNS
    }

    class Meta:
        model = Member
        fields = [key for key, _english, _chinese in EXPORT_COLUMNS]
        export_order = fields

    name = "MemberExportResourceZh" if language == "zh" else "MemberExportResource"
    return type(name, (_MemberExport,), {**declared, "Meta": Meta, "language": language, "__module__": __name__})


MemberExportResource = _resource("en")
MemberExportResource.__doc__ = "Members with English headers and values."
MemberExportResourceZh = _resource("zh")
MemberExportResourceZh.__doc__ = "会员（中文表头和取值）"


def _display_name(cls):
    return "English headers" if cls is MemberExportResource else "中文表头"


MemberExportResource.get_display_name = classmethod(_display_name)
MemberExportResourceZh.get_display_name = classmethod(_display_name)


class _EncodedCSV(CSV):
    """A CSV written in one encoding, with the bytes of the file returned (so the admin sends them as they are)."""

    label = ""
    encoding_out = "utf-8"
    bom = ""

    def get_title(self):
        return self.label

    def export_data(self, dataset, **kwargs):
        text = dataset.export("csv", **kwargs)
        return (self.bom + text).encode(self.encoding_out)

    def get_content_type(self):
        return f"text/csv; charset={self.encoding_out}"


class CsvUtf8Bom(_EncodedCSV):
    label = "CSV (UTF-8, Excel)"
    bom = "\ufeff"


class CsvGb18030(_EncodedCSV):
    label = "CSV (GB18030)"
    encoding_out = "gb18030"


EXPORT_FORMATS = [CsvUtf8Bom, CsvGb18030, XLSX]
