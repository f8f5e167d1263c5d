"""Import and export of members in the admin. Imports run as jobs (Celery; in-process without a broker) through
the same service as the command, with a preview of every row; exports use django-import-export."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export.admin import ExportMixin, ImportMixin

from members.masking import can_view_personal_data
from members.models import ImportJob

from . import services
from .orders import HistoryCSV, HistoryXLSX, OrderHistoryResource, history_row_count
from .resources import EXPORT_FORMATS, MemberExportResource, MemberExportResourceZh

MAX_UPLOAD = 200 * 1024 * 1024


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV (UTF-8 or GB18030, English or Chinese headers) or XLSX. Columns: name/姓名, phone/手机号, "
            "email/邮箱, gender/性别, birthday/生日, city/城市, channel/注册渠道, total_spend/累计消费, "
            "joined_at/注册时间; optional external_id, tags, points_balance, tier."
        ),
    )
    skip_errors = forms.BooleanField(
        label=gettext_lazy("Import the good rows and give me the faulty ones as a file"),
        required=False,
        help_text=gettext_lazy("Off: nothing is imported while any row has an error."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError(
                _("The file is larger than 200 MB; split it or use the import_members command.")
            )
        return upload


class MemberImportExportMixin(ExportMixin):
    resource_classes = [MemberExportResource, MemberExportResourceZh]
    formats = EXPORT_FORMATS
    change_list_template = "admin/members/member/change_list.html"

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="members_member_import"),
            path(
                "import/<int:job_id>/",
                self.admin_site.admin_view(self.import_job_view),
                name="members_member_import_job",
            ),
            path(
                "import/<int:job_id>/rejected.csv",
                self.admin_site.admin_view(self.import_rejected_view),
                name="members_member_import_rejected",
            ),
            *super().get_urls(),
        ]

    def get_export_resource_kwargs(self, request, **kwargs):
        return {
            **super().get_export_resource_kwargs(request, **kwargs),
            "mask_personal_data": not can_view_personal_data(request.user),
        }

    def _can_import(self, request):
        return request.user.has_perm("members.import_member")

    def import_view(self, request):
        if not self._can_import(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            job = services.import_job_create(
                upload=form.cleaned_data["file"],
                dry_run=True,
                skip_errors=form.cleaned_data["skip_errors"],
                actor=request.user,
            )
            return HttpResponseRedirect(reverse("admin:members_member_import_job", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import members"),
            "form": form,
            "opts": self.model._meta,
            "jobs": ImportJob.objects.select_related("created_by")[:10],
        }
        return TemplateResponse(request, "admin/members/member/import.html", context)

    def import_job_view(self, request, job_id):
        if not self._can_import(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id, kind=ImportJob.Kind.MEMBERS)
        if request.method == "POST" and job.dry_run and job.status == ImportJob.Status.DONE:
            confirmed = services.import_job_create(
                upload=None, dry_run=False, skip_errors=job.skip_errors, actor=request.user, source=job
            )
            self.message_user(request, _("The import has started."), messages.INFO)
            return HttpResponseRedirect(reverse("admin:members_member_import_job", args=[confirmed.pk]))
        can_confirm = (
            job.dry_run
            and job.status == ImportJob.Status.DONE
            and (job.skip_errors or not job.counts.get("errors"))
            and (job.counts.get("new") or job.counts.get("updated"))
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import of %(file)s") % {"file": job.original_name},
            "job": job,
            "opts": self.model._meta,
            "can_confirm": can_confirm,
            "running": job.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING),
            "shown_rows": len(job.preview or []),
            "total_rows": sum((job.counts or {}).values()),
            "per_status": services.PREVIEW_ROWS_PER_STATUS,
        }
        return TemplateResponse(request, "admin/members/member/import_job.html", context)

    def import_rejected_view(self, request, job_id):
        if not self._can_import(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id, kind=ImportJob.Kind.MEMBERS)
        if not job.error_file:
            raise Http404
        return FileResponse(job.error_file.open("rb"), as_attachment=True, filename=f"rejected-{job.pk}.csv")


class OrderHistoryImportMixin(ImportMixin):
    """*Orders › Import*. A file of up to `preview_rows` orders gets django-import-export's preview and import in the
    request; a larger one goes to the set-based engine as a background job (a preview job first, with progress, then
    the import once confirmed), as the member import does."""

    resource_classes = [OrderHistoryResource]
    formats = [HistoryCSV, HistoryXLSX]
    preview_rows = 5000

    def get_import_resource_kwargs(self, request, **kwargs):
        # Only a safety net: a file's size is estimated before it is read (see import_action).
        return {**super().get_import_resource_kwargs(request, **kwargs), "row_limit": self.preview_rows}

    def get_urls(self):
        return [
            path(
                "import/job/<int:job_id>/",
                self.admin_site.admin_view(self.import_job_view),
                name="members_order_import_job",
            ),
            path(
                "import/job/<int:job_id>/rejected.csv",
                self.admin_site.admin_view(self.import_rejected_view),
                name="members_order_import_rejected",
            ),
            *super().get_urls(),
        ]

    def import_action(self, request, **kwargs):
        upload = request.FILES.get("import_file") if request.method == "POST" else None
        if upload is not None and self.has_import_permission(request):
            if upload.size > MAX_UPLOAD:
                self.message_user(
                    request,
                    _("The file is larger than 200 MB; split it or use the import_orders command."),
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.path)
            rows = history_row_count(upload)
            if rows is None or rows > self.preview_rows:
                job = services.import_job_create(
                    upload=upload, dry_run=True, skip_errors=False, actor=request.user, kind=ImportJob.Kind.ORDERS
                )
                return HttpResponseRedirect(reverse("admin:members_order_import_job", args=[job.pk]))
        return super().import_action(request, **kwargs)

    def _order_job(self, request, job_id):
        if not self.has_import_permission(request):
            raise PermissionDenied
        return get_object_or_404(ImportJob, pk=job_id, kind=ImportJob.Kind.ORDERS)

    def import_job_view(self, request, job_id):
        job = self._order_job(request, job_id)
        if request.method == "POST" and job.dry_run and job.status == ImportJob.Status.DONE:
            confirmed = services.import_job_create(
                upload=None, dry_run=False, skip_errors=False, actor=request.user, source=job
            )
            self.message_user(request, _("The import has started."), messages.INFO)
            return HttpResponseRedirect(reverse("admin:members_order_import_job", args=[confirmed.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import of %(file)s") % {"file": job.original_name},
            "job": job,
            "opts": self.model._meta,
            "can_confirm": job.dry_run
            and job.status == ImportJob.Status.DONE
            and not job.counts.get("errors")
            and job.counts.get("new"),
            "running": job.status in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING),
        }
        return TemplateResponse(request, "admin/members/order/import_job.html", context)

    def import_rejected_view(self, request, job_id):
        job = self._order_job(request, job_id)
        if not job.error_file:
            raise Http404
        return FileResponse(job.error_file.open("rb"), as_attachment=True, filename=f"rejected-{job.pk}.csv")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "original_name",
        "dry_run",
        "skip_errors",
        "status",
        "progress",
        "counts",
        "created_by",
    ]
    list_filter = ["kind", "status", "dry_run"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    exclude = ["preview"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def response_change(self, request, obj):
        page = "members_order_import_job" if obj.kind == ImportJob.Kind.ORDERS else "members_member_import_job"
        return HttpResponseRedirect(reverse(f"admin:{page}", args=[obj.pk]))
