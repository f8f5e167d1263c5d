import os

from django.core.management.base import BaseCommand

from members import demo, events, extensions


class Command(BaseCommand):
    help = (
        "Load the demo programme of API.md and, with --members N, realistic demo members with orders, points, tiers, "
        "coupons and redemptions, topped up to N (idempotent: running it again adds nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--members", type=int, default=0, help="top the demo members up to this many (make run: 300; 0 for none)"
        )
        parser.add_argument("--username", default=os.environ.get("DEMO_ADMIN_USER", "admin"))
        parser.add_argument("--password", default=os.environ.get("DEMO_ADMIN_PASSWORD", "crm-demo-2026"))
        parser.add_argument("--no-staff", action="store_true", help="do not create the demo staff login")

    def handle(self, *args, members, username, password, no_staff, **options):
        channels = demo.demo_channels()
        self.stdout.write(f"channels: {', '.join(channel.code for channel in channels)}")
        for seeder in extensions.demo_seeders:
            seeder(stdout=self.stdout)
        member_ids = demo.demo_members_ensure(count=members) if members else []
        # History over the demo members (analytics: a year of orders) before their loyalty standing is worked out
        # from all their orders.
        for seeder in extensions.demo_history:
            seeder(stdout=self.stdout)
        if member_ids:
            events.demo_members_created.send(member_ids=member_ids)
        if members:
            self.stdout.write(f"demo members added: {len(member_ids)} (of {members} wanted)")
        if not no_staff:
            _user, created = demo.demo_staff_login(username=username, password=password)
            if created:
                self.stdout.write(self.style.SUCCESS(f"staff login: {username} / {password}"))
            else:
                self.stdout.write(f"staff login: {username} (exists; its password is unchanged, default {password})")
