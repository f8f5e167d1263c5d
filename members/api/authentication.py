"""API-key authentication for partner calls: the key names a channel (members own channels and their keys), so it
lives here; the rest of the frame (scopes, throttling, pagination, the error body) is in `core.api`.
Importing this module also registers the key scheme with drf-spectacular (MembersConfig.ready)."""

from django.core.cache import cache
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

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


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "members.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create keys in the admin or with `manage.py create_api_key`.",
        }
