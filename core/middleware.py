"""Request ids: every request gets one (or keeps the caller's `X-Request-ID`), every log line and every 500 body
carries it, so that a partner's report can be matched to the server's log."""

import contextvars
import logging
import re
import time
import uuid

from django.http import HttpResponseBadRequest, JsonResponse

access_logger = logging.getLogger("crm.api.access")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def current_request_id() -> str:
    return request_id_var.get()


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _ACCEPTABLE_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            channel_code = getattr(request, "api_channel_code", None)
            if channel_code:
                # Which channel made each partner call: the access log of the API.
                access_logger.info(
                    "%s %s %s channel=%s %.1fms",
                    request.method,
                    request.path,
                    response.status_code,
                    channel_code,
                    (time.monotonic() - started) * 1000,
                )
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RefuseNulMiddleware:
    """A NUL character in the path or the query string is refused with 400 before any view sees it.

    No text column can hold one (PostgreSQL refuses it), so a look-up by a NUL-bearing member number, coupon code
    or order id would otherwise end as a 500. Partner calls get API.md's error body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in request.META.get("QUERY_STRING", "") or _nul_in_query(request):
            from django.utils.translation import gettext as _

            message = _("The address contains a NUL character, which no value may contain.")
            if request.path.startswith("/api/"):
                from core.api.exceptions import error_body

                return JsonResponse(error_body("validation_error", message), status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _nul_in_query(request) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


class RequestIdLogFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


class AdminLanguageMiddleware:
    """The admin speaks the configured language (zh-hans) whatever the browser's Accept-Language says; an
    operator who wants English picks it with the switch in the header, which sets the language cookie that
    LocaleMiddleware reads first. The partner API keeps honouring Accept-Language. Place before LocaleMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
