"""Staff roles as Django groups, each a list of permission patterns (README "Security" › "Roles").

The groups are created by a data migration (members 0007) and their permissions are set again after every
`migrate` (a post_migrate receiver, see MembersConfig.ready), so the permissions of an app or a model added later
(analytics, campaigns) land in the right roles without another migration. Permissions given to a role by hand are
taken away again at the next `migrate`: change this file instead.

A pattern is "app_label.codename" with shell wildcards; "-" in front takes matching permissions away again."""

from fnmatch import fnmatchcase

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, transaction

CUSTOMER_SERVICE = "客服 Customer service"
OPERATIONS = "运营 Operations"
MARKETING = "市场 Marketing"
ANALYST = "分析 Analyst"
ADMINISTRATOR = "管理员 Administrator"

ROLES = {
    # Find and view members and their points, answer questions, write notes, adjust points within the programme's
    # limit per adjustment. No export, phone and e-mail masked.
    CUSTOMER_SERVICE: [
        "members.view_*",
        "-members.view_apikey",
        "-members.view_personal_data",
        "-members.view_importjob",
        "members.add_membernote",
        "loyalty.view_*",
        "loyalty.adjust_points",
    ],
    # Run the programme: members (edit, tag, merge, import, export), tiers, rules, rewards, coupons, gifts.
    OPERATIONS: [
        "members.view_*",
        "-members.view_apikey",
        "members.add_member",
        "members.change_member",
        "members.*_tag",
        "members.*_membertag",
        "members.add_membernote",
        "members.import_member",
        "members.export_member",
        "members.import_order",
        "members.view_personal_data",
        "loyalty.view_*",
        "loyalty.*_tier",
        "loyalty.*_earningrule",
        "loyalty.*_reward",
        "loyalty.*_coupontemplate",
        "loyalty.add_couponbatch",
        "loyalty.export_couponbatch",
        "loyalty.add_coupon",
        "loyalty.change_redemption",
        "loyalty.change_fulfilment",
        "loyalty.export_fulfilment",
        "loyalty.*_badge",
        "loyalty.adjust_points",
        "loyalty.set_tier",
        "loyalty.run_jobs",
    ],
    # Segments and campaigns (when those apps have them), tags, what analytics learns; no raw export (nor the
    # dashboard's tables: its members-at-risk table lists members by number and name).
    MARKETING: [
        "members.view_member",
        "members.view_tag",
        "members.add_tag",
        "members.change_tag",
        "members.view_membertag",
        "loyalty.view_tier",
        "loyalty.view_reward",
        "loyalty.view_coupontemplate",
        "analytics.view_*",
        "campaigns.*",
        "-*.export_*",
    ],
    # Read-only over the product, and analytics: the dashboard's tables as CSV too (figures, and members at risk by
    # number and name, which the role sees on the dashboard anyway; no phone or e-mail).
    ANALYST: [
        "members.view_*",
        "-members.view_apikey",
        "-members.view_personal_data",
        "loyalty.view_*",
        "analytics.view_*",
        "analytics.export_dashboard",
        "campaigns.view_*",
    ],
    # Everything, including staff accounts and lock-outs (not a superuser: the role's permissions are listed).
    ADMINISTRATOR: ["*.*"],
}


def permissions_matching(patterns, permissions):
    """The subset of `permissions` ((pk, "app_label.codename") pairs) the role's patterns give."""
    chosen = set()
    for pattern in patterns:
        remove = pattern.startswith("-")
        pattern = pattern.lstrip("-")
        matched = {pk for pk, name in permissions if fnmatchcase(name, pattern)}
        chosen = chosen - matched if remove else chosen | matched
    return chosen


def roles_sync(*, using: str = DEFAULT_DB_ALIAS) -> dict:
    """Create the role groups that are missing and set each one's permissions to exactly what its patterns give.
    Returns {role: number of permissions}."""
    from django.contrib.auth.models import Group, Permission

    permissions = [
        (pk, f"{app_label}.{codename}")
        for pk, app_label, codename in Permission.objects.using(using).values_list(
            "pk", "content_type__app_label", "codename"
        )
    ]
    counts = {}
    with transaction.atomic(using=using):
        for role, patterns in ROLES.items():
            group, _created = Group.objects.using(using).get_or_create(name=role)
            chosen = permissions_matching(patterns, permissions)
            group.permissions.set(chosen)
            counts[role] = len(chosen)
    return counts


def sync_after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    """post_migrate receiver. The signal is sent once per app, in INSTALLED_APPS order, each time after that app's
    permissions are created; syncing on the last app's signal sees every app's permissions (also after `flush`)."""
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if with_models and sender.label == with_models[-1].label:
        roles_sync(using=using)
