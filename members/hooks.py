"""Hooks that let higher apps react to what happens in `members` without `members` importing them.

Each hook is a small ordered registry; a higher app registers in its AppConfig.ready(). Receivers are called
directly, inside the caller's transaction, so their writes commit or roll back with the change that caused them.
"""


class Hook:
    def __init__(self, name):
        self.name = name
        self._receivers = []

    def register(self, receiver):
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def send(self, **kwargs):
        return [receiver(**kwargs) for receiver in self._receivers]

    @property
    def receivers(self):
        return list(self._receivers)


# members_merge(): receivers move their rows from `dropped` to `kept` and return {label: count} for the record.
member_merged = Hook("member_merged")
# order_record() / refund_record() / event_record(): loyalty earns or reverses points.
order_recorded = Hook("order_recorded")
refund_recorded = Hook("refund_recorded")
# The order history import wrote orders without points: receivers take (orders=[(order id, member id, channel id,
# occurred_at), ...]) in the import's transaction and do set-based what order_record(award=False) does per order.
orders_imported = Hook("orders_imported")
event_recorded = Hook("event_recorded")
# seed_demo: each app loads its part of the demo program; receivers take (stdout=, members=).
demo_seeders = Hook("demo_seeders")
# The staff home page: receivers return a list of {"title", "value", "hint"?} cards.
dashboard_cards = Hook("dashboard_cards")
# The member page: receivers return a list of {"title", "rows": [(label, value), ...]} panels.
member_panels = Hook("member_panels")
# The member's loyalty summary in API answers: receivers take (members=[...], channel=) and return
# {member_id: {"tier": {"code", "name"} | None, "points": {"balance", "pending"}}}; one call per page, not per row.
member_loyalty_summary = Hook("member_loyalty_summary")
# The `tier` filter of the member list: receivers take (queryset=, tier_code=, channel=) and return a queryset.
member_tier_filter = Hook("member_tier_filter")
# The member import: receivers take (program_code=, rows=[{"member_id", "points_balance", "tier", "row"}], actor=)
# for the rows with opening balances (brands moving from another system), in the import's transaction, and
# return a list of {"row", "column", "message"} errors (then the import rolls back).
members_imported = Hook("members_imported")
# channel_get_or_create() made a new channel: receivers take (channel=); loyalty links it to the programme when
# there is only one (a brand with several programmes links channels in the admin).
channel_created = Hook("channel_created")
# Which members a partner channel sees (API.md: a channel sees only its programme's members): receivers take
# (channel=) and return a Q over Member, or None for no restriction; members.selectors.members_visible_to() applies
# them all. Without receivers (no loyalty app) a channel sees every member.
member_visibility = Hook("member_visibility")
# A person became a member through a channel, or an existing member signed up again through a channel of another
# programme: receivers take (member=, channel=) (channel is None for staff and imports); loyalty opens the account in
# the channel's programme, in the sign-up's transaction.
member_joined = Hook("member_joined")
# A member's personal data export (PIPL/GDPR access): receivers take (member=) and return {section: JSON-able data}
# (loyalty: points, ledger, coupons, redemptions, badges; campaigns: messages).
member_personal_data = Hook("member_personal_data")
# Members' personal data was erased: receivers take (member_ids=) and anonymise what they hold about them, set-based,
# in the erasure's transaction (orders, ledger and figures stay).
members_erased = Hook("members_erased")
# seed_demo --members N added members with order history: receivers take (member_ids=) and give them their
# loyalty standing (points and tiers from that history) in bulk.
demo_members_created = Hook("demo_members_created")
# The daily jobs (`run_loyalty_jobs`, the daily beat task): after a programme's loyalty jobs for a day, higher apps
# run their daily work; receivers take (program=, as_of=) and return {label: counts}.
daily_jobs = Hook("daily_jobs")
