"""Channel `app`: each message becomes a `campaign.message` webhook event for the brand's own app to push."""

from loyalty.models import Program

from . import Backend, Result


class AppWebhookBackend(Backend):
    def send(self, messages):
        from campaigns import webhooks

        results = []
        for message in messages:
            program = Program.objects.get(pk=message.program_id)
            ids = webhooks.event_emit(
                program=program,
                type="campaign.message",
                data={
                    "message_id": message.message_id,
                    "member_no": message.member_no,
                    "subject": message.subject,
                    "body": message.body,
                },
            )
            if ids:
                results.append(Result(message_id=message.message_id, sent=True, reference=f"webhook:{ids[0]}"))
            else:
                error = "No webhook of this programme subscribes to campaign.message."
                results.append(Result(message_id=message.message_id, sent=False, error=error))
        return results
