"""For development and tests: one JSON line per message in a file (`CAMPAIGN_MESSAGE_FILE`), or on the console."""

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.files.locks import LOCK_EX, lock, unlock

from . import Backend, Result


class FileBackend(Backend):
    def path(self) -> Path:
        return Path(self.options.get("path") or settings.CAMPAIGN_MESSAGE_FILE)

    def send(self, messages):
        lines = "".join(
            json.dumps(
                {
                    "id": m.message_id,
                    "channel": m.channel,
                    "to": m.to,
                    "member_no": m.member_no,
                    "subject": m.subject,
                    "body": m.body,
                },
                ensure_ascii=False,
            )
            + "\n"
            for m in messages
        )
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            lock(handle, LOCK_EX)  # two worker processes append whole batches, never interleaved lines
            try:
                handle.write(lines)
            finally:
                unlock(handle)
        return [Result(message_id=m.message_id, sent=True, reference=f"file:{m.message_id}") for m in messages]


class ConsoleBackend(Backend):
    def send(self, messages):
        for m in messages:
            sys.stdout.write(f"[{m.channel} to {m.to}] {m.subject + ': ' if m.subject else ''}{m.body}\n")
        return [Result(message_id=m.message_id, sent=True, reference=f"console:{m.message_id}") for m in messages]
