"""Message delivery: one backend per message channel, chosen in settings (`CAMPAIGN_BACKENDS`).

A backend takes a batch of `Outgoing` messages and answers one `Result` per message; it never raises for a message
the provider refused (that is a failed result) and raises `TransientError` only when the whole batch should be tried
again later (the provider did not answer).
"""

import dataclasses

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_BACKENDS = {
    "sms": "campaigns.delivery.file.FileBackend",
    "wechat": "campaigns.delivery.file.FileBackend",
    "app": "campaigns.delivery.app.AppWebhookBackend",
    "email": "campaigns.delivery.email.EmailBackend",
}


@dataclasses.dataclass(frozen=True)
class Outgoing:
    message_id: int
    channel: str
    to: str
    member_no: str
    subject: str
    body: str
    program_id: int | None = None


@dataclasses.dataclass(frozen=True)
class Result:
    message_id: int
    sent: bool
    reference: str = ""
    error: str = ""


class TransientError(Exception):
    """The provider did not answer: try the whole batch again later."""


class Backend:
    """What every channel's backend does."""

    def __init__(self, **options):
        self.options = options

    def send(self, messages: list[Outgoing]) -> list[Result]:
        raise NotImplementedError


def backend_for(channel: str) -> Backend:
    configured = {**DEFAULT_BACKENDS, **getattr(settings, "CAMPAIGN_BACKENDS", {})}
    spec = configured[channel]
    path, options = (spec, {}) if isinstance(spec, str) else (spec["BACKEND"], spec.get("OPTIONS", {}))
    return import_string(path)(**options)
