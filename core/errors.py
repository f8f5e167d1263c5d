"""The domain errors of the whole product: one hierarchy with stable codes.

Services raise them; the API's exception handler (`core.api.exceptions`) renders them as API.md's error body and the
admin shows their message. Each app subclasses `DomainError` in its own `errors.py` for refusals of its own.
"""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A refusal a person can act on. `code` is stable; `status` is the HTTP status the API answers with."""

    code = "domain_error"
    status = 409
    default_message = _("The request could not be carried out.")

    def __init__(self, message=None, *, fields=None, **extra):
        self.message = str(message or self.default_message)
        self.fields = fields
        self.extra = extra
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "validation_error"
    status = 400
    default_message = _("Some fields are not valid.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    default_message = _("This id was already used with a different payload.")
