from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from members import hooks


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

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, ActionsNeedPermission):
            admin_class = type(
                admin_class.__name__, (ActionsNeedPermission, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)

    def index(self, request, extra_context=None):
        cards = []
        for result in hooks.dashboard_cards.send(request=request):
            cards.extend(result or [])
        return super().index(request, {"dashboard_cards": cards, **(extra_context or {})})
