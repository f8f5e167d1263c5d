"""Read-side extension points of the members app: what a higher app adds to members' own answers (the loyalty
summary in API answers, the `tier` filter of the member list, the demo data). Not events: nothing happened; the
caller asks and uses the answer. Presentation hooks of the admin (member page panels, home cards) belong to the
admin site (`config.admin.CrmAdminSite`).
"""

from core.registry import Registry

# The member's loyalty summary in API answers: entries take (members=[...], channel=) and return
# {member_id: {"tier": {"code", "name"} | None, "points": {"balance", "pending"}}}; one call per page, not per row.
member_loyalty_summary = Registry("member_loyalty_summary")
# The `tier` filter of the member list (API and admin): entries take (queryset=, tier_code=, channel=) and return
# a queryset.
member_tier_filter = Registry("member_tier_filter")
# seed_demo: each app loads its part of the demo programme; entries take (stdout=).
demo_seeders = Registry("demo_seeders")
# seed_demo, once the demo members exist and before demo_members_created works out their loyalty standing from
# their orders: entries add history over them (analytics: a year of orders); they take (stdout=).
demo_history = Registry("demo_history")
# Which members a partner channel sees (API.md: a channel sees only its programme's members): entries take
# (channel=) and return a Q over Member, or None for no restriction; members.selectors.members_visible_to() applies
# them all. Without entries (no loyalty app) a channel sees every member.
member_visibility = Registry("member_visibility")
# A member's personal data export (PIPL/GDPR access): entries take (member=) and return {section: JSON-able data}
# (loyalty: points, ledger, coupons, redemptions, badges; campaigns: messages).
member_personal_data = Registry("member_personal_data")
# The merge page compares the two members: entries take (keep=, drop=) and return
# [(label, kept member's value, merged-away member's value), ...] (loyalty: tier and points per programme).
member_compare_rows = Registry("member_compare_rows")
# The member import checks points and tiers before writing: entries take (program_code=, rows=[{"row",
# "member_id" (None for a new member), "points_balance", "tier"}]) and return [{"row", "error": (column, message)}
# | {"row", "tier": code, "changes": [columns that will change]}].
members_import_checked = Registry("members_import_checked")
