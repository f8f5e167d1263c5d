"""The member import of a 100,000-row file made by tests/data/make_member_files.py, through the command
(errors skipped), into a table that already holds 100,000 members; end to end: reading, normalising, matching and
writing."""

import io
import json
import subprocess
import sys
import time
from pathlib import Path

ROWS = 100_000
EXISTING = 100_000
TOOL = Path(__file__).resolve().parents[1] / "tests" / "data" / "make_member_files.py"


def run(context):
    from django.core.management import call_command

    from members.demo import demo_channels, demo_members_create
    from members.models import Member

    rows = max(1000, int(ROWS * context.scale))
    existing = max(1000, int(EXISTING * context.scale))
    demo_channels()
    have = Member.objects.count()
    if have < existing:
        demo_members_create(count=existing - have, orders_per_member=0)
    prefix = f"bench{rows}"
    target = context.workdir / f"{prefix}_utf8bom.csv"
    if not target.exists():
        subprocess.run([sys.executable, str(TOOL), "11", str(rows), str(context.workdir), prefix], check=True)
    answers = json.loads((context.workdir / f"{prefix}_answers.json").read_text())["counts"]
    for encoding in ("utf8bom", "gb18030"):
        path = context.workdir / f"{prefix}_{encoding}.csv"
        out = io.StringIO()
        started = time.perf_counter()
        call_command(
            "import_members",
            str(path),
            "--skip-errors",
            "--dry-run" if encoding == "gb18030" else "--skip-errors",
            stdout=out,
            stderr=io.StringIO(),
        )
        seconds = time.perf_counter() - started
        counts = json.loads(out.getvalue().strip().splitlines()[-1])
        yield context.result(
            f"member_import_{encoding}_command" + ("_dry_run" if encoding == "gb18030" else ""),
            rows,
            seconds,
            existing_members=existing,
            counts=counts,
            expected=answers,
            target_per_second=20000,
        )
