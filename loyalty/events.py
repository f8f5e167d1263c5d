"""The domain events of the loyalty app (see `core.events`): higher apps (campaigns' webhooks and journeys) react to
what happens to points, tiers and rewards without loyalty importing them."""

from core.events import DomainEvent

# tier_move(): an account moved to another tier (an order crossing a threshold, staff setting it by hand). The daily
# job's set-based moves are in TierChange rows of that day (reasons downgrade and retained).
tier_changed = DomainEvent("tier_changed", "payload: change=")
# coupons_issue() gave coupons to a member (a redemption, a campaign's offer, a journey step, staff).
coupons_issued = DomainEvent("coupons_issued", "payload: coupons=, member=")
# reward_redeem() recorded a new redemption (not for an idempotent replay).
redemption_created = DomainEvent("redemption_created", "payload: redemption=")
