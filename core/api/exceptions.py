"""The one error body of API.md, for domain errors, DRF's own errors and anything unhandled."""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import DomainError
from core.middleware import current_request_id

logger = logging.getLogger("crm.api")


_CODES = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "validation_error"),
    (exceptions.ValidationError, "validation_error"),
]


def error_body(code, message, fields=None, **extra):
    error = {"code": code, "message": str(message), **extra}
    if fields:
        error["fields"] = fields
    return {"error": error}


def flatten_fields(detail, prefix=""):
    """DRF's nested error detail as API.md's flat `fields`: {"lines.0.amount": ["..."]}."""
    flat = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") and not prefix else key
            flat.update(flatten_fields(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}"))
    elif isinstance(detail, list) and detail and all(isinstance(item, str) for item in detail):
        flat[prefix or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if item:
                flat.update(flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def _validation_message(fields):
    first_field, messages = next(iter(fields.items()))
    first = messages[0] if messages else ""
    if first_field == "non_field_errors":
        return first
    if len(fields) == 1:
        return _("%(field)s: %(message)s") % {"field": first_field, "message": first}
    return _("%(field)s: %(message)s (and %(count)d more fields)") % {
        "field": first_field,
        "message": first,
        "count": len(fields) - 1,
    }


def exception_handler(exc, context):
    """Render every error as `{"error": {"code", "message", "fields"?}}` (API.md: Errors)."""
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        set_rollback()
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response(
            error_body(
                "server_error",
                _("Something went wrong on our side. Quote the request id when you report it."),
                request_id=current_request_id(),
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    code = next((code for cls, code in _CODES if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_fields(exc.detail)
        response.data = error_body(code, _validation_message(fields), fields)
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body(code, _("The body is not valid JSON: %(detail)s") % {"detail": exc.detail})
    elif isinstance(exc, exceptions.Throttled):
        # DRF writes Retry-After rounded down, which is 0 for per-second rates; a client should wait a whole second.
        seconds = max(1, math.ceil(exc.wait or 1))
        response["Retry-After"] = str(seconds)
        response.data = error_body(
            code, _("Too many requests for this key; retry in %(seconds)d s.") % {"seconds": seconds}
        )
    else:
        response.data = error_body(code, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    return response
