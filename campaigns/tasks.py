"""Celery tasks of the campaigns app: thin, idempotent, each calls one service; they take ids."""

from celery import shared_task
from django.utils import timezone

from . import delivery, journeys, sending, webhooks


@shared_task(acks_late=True)
def campaign_deliver(campaign_id: int) -> int:
    """Fan a campaign's queued messages out into batch tasks (two workers share them)."""
    batches = sending.delivery_batches(campaign_id=campaign_id)
    for id_from, id_to in batches:
        campaign_deliver_batch.delay(campaign_id, id_from, id_to)
    sending.campaign_finish_if_done(campaign_id=campaign_id)
    return len(batches)


@shared_task(bind=True, acks_late=True, max_retries=sending.MAX_ATTEMPTS - 1)
def campaign_deliver_batch(self, campaign_id: int, id_from: int, id_to: int) -> dict:
    try:
        counts = sending.campaign_batch_deliver(campaign_id=campaign_id, id_from=id_from, id_to=id_to)
    except delivery.TransientError as error:
        if self.request.retries >= self.max_retries:
            failed = sending.messages_fail(campaign_id=campaign_id, id_from=id_from, id_to=id_to, error=str(error))
            sending.campaign_finish_if_done(campaign_id=campaign_id)
            return {"failed": failed}
        raise self.retry(exc=error, countdown=60 * 2**self.request.retries) from error
    if "wait_until" in counts:
        # Quiet hours: the batch waits for their end. (In-process Celery cannot wait; the periodic tick resumes it.)
        if not self.app.conf.task_always_eager:
            campaign_deliver_batch.apply_async((campaign_id, id_from, id_to), eta=counts["wait_until"])
        return {"waiting_until": counts["wait_until"].isoformat()}
    return counts


@shared_task(acks_late=True)
def campaigns_tick() -> dict:
    """Every few minutes: send the scheduled campaigns that are due, and resume deliveries that stalled."""
    return journeys.campaigns_tick(now=timezone.now())


@shared_task(acks_late=True)
def webhook_deliver(delivery_id: int) -> str:
    """One try; a failed try schedules the next one (exponential backoff for 24 hours)."""
    result = webhooks.delivery_attempt(delivery_id=delivery_id)
    if (
        result.status == result.Status.PENDING
        and result.next_attempt_at
        and not webhook_deliver.app.conf.task_always_eager
    ):
        webhook_deliver.apply_async((delivery_id,), eta=result.next_attempt_at)
    return result.status
