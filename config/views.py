import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.cache import never_cache

from core.middleware import current_request_id

logger = logging.getLogger("crm")


@never_cache
def healthz(request):
    """200 when the database answers a query, 503 when it does not (for load balancers and orchestrators)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("healthz: database unavailable", exc_info=True)
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _is_api(request):
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    # Under /api/ every answer is JSON in API.md's error shape, even for a path no view serves.
    if _is_api(request):
        return JsonResponse({"error": {"code": "not_found", "message": _("No such endpoint.")}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        body = {
            "error": {
                "code": "server_error",
                "message": _("Something went wrong on our side. Quote the request id when you report it."),
                "request_id": current_request_id(),
            }
        }
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
