"""`make bench`: run the benchmarks against the configured database and print one JSON line per benchmark:
{"name", "n", "seconds", "per_second", ...}.

Each `benchmarks/bench_*.py` module has `run(context)` that yields result dicts. The runner creates a throwaway
database beside the configured one (`test_<name>`, as the test suite does), migrates it, and drops it afterwards,
so a benchmark never touches real data. `python -m benchmarks NAME ...` runs only the modules named.
"""

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


class Context:
    def __init__(self, args):
        self.args = args
        self.scale = args.scale
        self.workdir = Path(args.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def database_url(self):
        """A DATABASE_URL for subprocesses (gunicorn, workers) that points at the benchmark database."""
        from django.db import connection

        db = connection.settings_dict
        if connection.vendor == "postgresql":
            auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
            return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        return f"sqlite:///{db['NAME']}"

    def result(self, name, n, seconds, **extra):
        return {
            "name": name,
            "n": n,
            "seconds": round(seconds, 4),
            "per_second": round(n / seconds, 1) if seconds else None,
            **extra,
        }


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the data sizes (0.01 for a smoke run)")
    parser.add_argument("--workdir", default="bench-data")
    parser.add_argument("--keepdb", action="store_true", help="reuse the benchmark database between runs")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "sqlite":
        # A file, not memory, so that subprocesses (gunicorn) see the same database.
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
            Path(args.workdir).resolve() / "bench.sqlite3"
        )
        Path(args.workdir).mkdir(parents=True, exist_ok=True)

    modules = sorted(
        info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]) if info.name.startswith("bench_")
    )
    if args.names:
        modules = [name for name in modules if name.removeprefix("bench_") in args.names or name in args.names]
    context = Context(args)
    # serialize=False: no test case needs a copy of the data, and with --keepdb it is millions of rows.
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keepdb, serialize=False)
    print(f"# database {connection.vendor} {database}", file=sys.stderr)
    failed = False
    try:
        for name in modules:
            module = importlib.import_module(f"benchmarks.{name}")
            try:
                for result in module.run(context):
                    print(json.dumps(result, ensure_ascii=False), flush=True)
            except Exception as error:
                failed = True
                print(json.dumps({"name": name, "error": repr(error)}), flush=True)
    finally:
        connection.creation.destroy_test_db(database, verbosity=0, keepdb=args.keepdb)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
