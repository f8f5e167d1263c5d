from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog

from core.registry import Registry


class AdminJavaScriptCatalog(JavaScriptCatalog):
    """Django admin's JavaScript strings plus ours (LOCALE_PATHS, last so they win), which fill what Django's
    zh-hans catalogue leaves in English (the two-box selector of rule scopes)."""

    def get_paths(self, packages):
        return [*super().get_paths(packages), *(str(path) for path in settings.LOCALE_PATHS)]


class ActionsNeedPermission:
    """An admin action that declares no `allowed_permissions` is offered only to staff who may change the model.

    Our own actions each declare their permission; this is the net for actions of third-party admins (the Celery
    schedules' "run" and "enable", axes' clean-up), which a view-only user must not run either."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            return actions
        return {name: action for name, action in actions.items() if getattr(action[0], "allowed_permissions", None)}


class CrmAdminSite(admin.AdminSite):
    """The operators' UI: branded, bilingual, with a home page of KPI cards that each app contributes."""

    site_header = _("Membership CRM")
    site_title = _("Membership CRM")
    index_title = _("Home")
    index_template = "admin/crm_index.html"

    def __init__(self, name="admin"):
        super().__init__(name)
        # Presentation hooks, registered by each app's AppConfig.ready() on `django.contrib.admin.site`:
        # the home page's cards (entries take request= and return [{"title", "value", "hint"?, "url"?}]) and
        # the member page's panels (entries take member=, request= and return [{"title", "rows": [(label, value)]}]).
        self.dashboard_cards = Registry("dashboard_cards")
        self.member_panels = Registry("member_panels")
        # Actions of the member list added by higher apps (admin action functions, each checking a permission).
        self.member_actions = Registry("member_actions")

    # Technical screens come after the business sections on the home page and in the sidebar.
    technical_apps = ("django_celery_beat", "auth")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=lambda app: app["app_label"] in self.technical_apps)

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, ActionsNeedPermission):
            admin_class = type(
                admin_class.__name__, (ActionsNeedPermission, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)

    def index(self, request, extra_context=None):
        cards = self.dashboard_cards.collect(request=request)
        return super().index(request, {"dashboard_cards": cards, **(extra_context or {})})

    def i18n_javascript(self, request, extra_context=None):
        return AdminJavaScriptCatalog.as_view(packages=["django.contrib.admin"])(request)
