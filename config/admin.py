from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog

from members import hooks


class AdminJavaScriptCatalog(JavaScriptCatalog):
    """Django admin's JavaScript strings plus ours (LOCALE_PATHS, last so they win), which fill what Django's
    zh-hans catalogue leaves in English (the two-box selector of rule scopes)."""

    def get_paths(self, packages):
        return [*super().get_paths(packages), *(str(path) for path in settings.LOCALE_PATHS)]


class CrmAdminSite(admin.AdminSite):
    """The operators' UI: branded, bilingual, with a home page of KPI cards that each app contributes."""

    site_header = _("Membership CRM")
    site_title = _("Membership CRM")
    index_title = _("Home")
    index_template = "admin/crm_index.html"

    def index(self, request, extra_context=None):
        cards = []
        for result in hooks.dashboard_cards.send(request=request):
            cards.extend(result or [])
        return super().index(request, {"dashboard_cards": cards, **(extra_context or {})})

    def i18n_javascript(self, request, extra_context=None):
        return AdminJavaScriptCatalog.as_view(packages=["django.contrib.admin"])(request)
