from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from members import services
from members.models import API_SCOPES, Channel


class Command(BaseCommand):
    help = "Create an API key for a channel (created if needed); prints the key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("channel_code")
        parser.add_argument("--scopes", default="", help=f"comma-separated, from: {','.join(API_SCOPES)}")
        parser.add_argument("--all-scopes", action="store_true")
        parser.add_argument("--name", default="")
        parser.add_argument("--kind", default=Channel.Kind.PARTNER, choices=Channel.Kind.values)

    def handle(self, *args, channel_code, scopes, all_scopes, name, kind, **options):
        chosen = list(API_SCOPES) if all_scopes else [scope.strip() for scope in scopes.split(",") if scope.strip()]
        if not chosen:
            raise CommandError("Give --scopes a,b or --all-scopes.")
        channel = services.channel_get_or_create(code=channel_code, kind=kind)
        try:
            api_key, raw_key = services.api_key_create(channel=channel, scopes=chosen, name=name)
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stderr.write(f"channel {channel.code}, key {api_key.prefix}…, scopes {', '.join(api_key.scopes)}")
        self.stdout.write(raw_key)
