"""The partner API's frame, shared by every app's API: API-key authentication, scopes, per-key throttling and
pagination (the error body is in `exceptions.py`).

It lives in `members` because the lowest app owns channels and their keys; higher apps import it.
"""

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from .. import selectors, services

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION_SECONDS = 60


class ChannelPrincipal:
    """`request.user` for a partner call: the channel behind the key (not a staff user)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, channel):
        self.channel = channel

    def __str__(self):
        return f"channel:{self.channel.code}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode("latin-1") != KEYWORD or len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the key as: Authorization: Api-Key <key>."))
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked API key.")) from None
        api_key = selectors.api_key_by_raw_key(raw_key=raw_key)
        if api_key is None or not api_key.is_active or not api_key.channel.is_active:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked API key."))
        # Record which channel made the request (logged by the request-id middleware) and when the key was last
        # used, at most once a minute so that busy keys do not write on every call.
        request._request.api_channel_code = api_key.channel.code
        if cache.add(f"api-key-used:{api_key.pk}", 1, LAST_USED_RESOLUTION_SECONDS):
            services.api_key_mark_used(api_key_id=api_key.pk)
        return ChannelPrincipal(api_key.channel), api_key

    def authenticate_header(self, request):
        return KEYWORD


def required_scope(view, request):
    """The scope a view needs: `required_scopes` maps a viewset action or an HTTP method to a scope."""
    scopes = getattr(view, "required_scopes", {})
    action = getattr(view, "action", None)
    if action and action in scopes:
        return scopes[action]
    return scopes.get(request.method)


class HasScope(BasePermission):
    """A key must carry the scope its endpoint declares; an endpoint that declares none is closed."""

    message = _("This API key lacks the scope this endpoint needs.")

    def has_permission(self, request, view):
        if request.auth is None:
            return False
        if getattr(view, "action", "") is None:
            return True  # a method the viewset does not route: let DRF answer 405
        scope = required_scope(view, request)
        if scope is None:
            return False
        # A tuple means any one of these scopes will do.
        accepted = scope if isinstance(scope, tuple) else (scope,)
        if not set(accepted) & set(request.auth.scopes):
            self.message = _("This API key lacks the scope %(scope)s.") % {"scope": " or ".join(accepted)}
            return False
        return True


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per key, at the channel's rate or the default `API_THROTTLE_RATE`."""

    scope = "api_key"

    def get_rate(self):
        return settings.API_THROTTLE_RATE

    def allow_request(self, request, view):
        if request.auth is None:
            return True
        self.rate = request.auth.channel.throttle_rate or settings.API_THROTTLE_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return f"throttle:api-key:{request.auth.pk}"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested deeper than Python's recursion limit answered as 400, not 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("it is nested too deeply.")) from None


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200
