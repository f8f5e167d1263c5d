"""E-mail through Django's e-mail backends (SMTP in production, the console in development)."""

from django.conf import settings
from django.core import mail

from . import Backend, Result, TransientError


class EmailBackend(Backend):
    def send(self, messages):
        try:
            connection = mail.get_connection(fail_silently=False)
            connection.open()
        except OSError as error:
            raise TransientError(str(error)) from error
        results = []
        try:
            for m in messages:
                email = mail.EmailMessage(
                    subject=m.subject or settings.CAMPAIGN_EMAIL_SUBJECT,
                    body=m.body,
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    to=[m.to],
                    connection=connection,
                )
                try:
                    email.send()
                except OSError as error:
                    results.append(Result(message_id=m.message_id, sent=False, error=str(error)[:500]))
                else:
                    results.append(Result(message_id=m.message_id, sent=True, reference=f"email:{m.message_id}"))
        finally:
            connection.close()
        return results
