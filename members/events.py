"""The domain events of the members app (see `core.events`): higher apps react to what happens here without
`members` importing them. Handlers connect in their AppConfig.ready(); in-transaction handlers commit or roll back
with the change, on-commit handlers (messages, webhooks) run only once it is committed.
"""

from core.events import DomainEvent

# members_merge(): in-transaction handlers move their rows from `dropped` to `kept` and return {label: count}
# for the merge's record.
member_merged = DomainEvent("member_merged", "payload: kept=, dropped=")
# order_record(): loyalty earns points (unless `award` is off, for loaded history).
order_recorded = DomainEvent("order_recorded", "payload: order=, award=")
# refund_record(): loyalty takes back the points of the refunded part.
refund_recorded = DomainEvent("refund_recorded", "payload: refund=, order=")
# event_record(): loyalty awards points for behaviour (sign-up, review, check-in ...).
event_recorded = DomainEvent("event_recorded", "payload: event=")
# The member import has written its members: in-transaction handlers get the rows with opening balances
# (rows=[{"member_id", "points_balance", "tier", "row"}], program_code=, actor=) and return a list of
# {"row", "column", "message"} errors (then the import rolls back).
members_imported = DomainEvent("members_imported", "payload: program_code=, rows=, actor=")
# members_import() has written a file's members (not sent for a dry run or a refused file): counts=
# {"new", "updated", "unchanged", "errors"}, actor=. On-commit handlers run once the members are committed.
members_import_finished = DomainEvent("members_import_finished", "payload: counts=, actor=")
# channel_get_or_create() made a new channel: loyalty links it to the programme when there is only one (a brand
# with several programmes links channels in the admin).
channel_created = DomainEvent("channel_created", "payload: channel=")
# seed_demo --members N added members with order history: loyalty gives them their standing (points and tiers
# from that history) in bulk.
demo_members_created = DomainEvent("demo_members_created", "payload: member_ids=")
# A person became a member through a channel, or an existing member signed up again through a channel of another
# programme: payload (member=, channel=) (channel is None for staff and imports); loyalty opens the account in the
# channel's programme, in the sign-up's transaction.
member_joined = DomainEvent("member_joined", "payload: member=, channel=")
# Members' personal data was erased: handlers take (member_ids=) and anonymise what they hold about them,
# set-based, in the erasure's transaction (orders, ledger and figures stay).
members_erased = DomainEvent("members_erased", "payload: member_ids=")
# The order history import is storing orders, chunk by chunk: handlers take (orders=[(member id, channel id,
# occurred_at (an aware datetime or its ISO 8601 text), amount), ...], first=) for each chunk, on a connection of
# their own (the same for the whole import) while the import's transaction writes them (they see none of them yet),
# and read ahead what they will need when the orders are stored, keeping it in their session (`first`: the import's
# first chunk); then (orders=None) once the last chunk is given, and return what they read; the import hands those
# results to orders_imported as `prepared`.
orders_importing = DomainEvent("orders_importing", "payload: orders=, first=")
# The order history import wrote orders without points: handlers take (orders=[(order id, member id, channel id,
# occurred_at), ...], prepared=[results of orders_importing, or none]) in the import's transaction and do set-based
# what order_record(award=False) does per order.
orders_imported = DomainEvent("orders_imported", "payload: orders=, prepared=")
# Members joined in bulk (imported, kept by a merge, created by the demo): payload (member_ids=, program_code=None);
# loyalty gives each one what a member of their programme has (the points account in the entry tier), set-based,
# in the caller's transaction.
members_joined = DomainEvent("members_joined", "payload: member_ids=, program_code=")
# member_update() changed a member's profile or consents: payload (member=, changes={field: [old, new]},
# channel=); webhooks (member.updated) start from here.
member_updated = DomainEvent("member_updated", "payload: member=, changes=, channel=")
