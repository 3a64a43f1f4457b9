"""Rebuild reporting's summaries and buckets from the stored facts (every event it ever took).

    python -m services.reporting.rebuild            # rebuild, and say whether anything changed
    make reports-rebuild

Run it with the reporting processes stopped (it refuses while another holds the projector's
lease): it forgets the summaries and the buckets, folds every fact again in memory and writes
them back. Because an application's contribution depends only on its set of events, the result
is identical to what the live projection built; the command compares the two and prints the
buckets that differ (none, unless something went wrong).
"""
from __future__ import annotations

import argparse
import sys

from services.common.config import load_config
from services.common.mongo import open_database
from services.reporting import domain
from services.reporting.projector import Projector
from services.reporting.store import ReportingStore


def figures(store: ReportingStore) -> dict[str, dict]:
    """Every bucket's counters by key (what the reports read), for comparing; a bucket left
    empty (a cell whose applications all moved on: kept, with its batch stamps, so a replayed
    batch cannot count into it twice) reads as absent."""
    return {bucket_id: doc["keys"] for bucket_id, doc in store.all_buckets().items()
            if doc["keys"]}


def rebuild(store: ReportingStore, timezone_name: str | None = None) -> tuple[int, list[str]]:
    """Rebuild from the facts; returns how many applications and which buckets changed."""
    before = figures(store)
    tz = domain.report_timezone(timezone_name)
    count = Projector(store, tz).rebuild(store.all_facts())
    after = figures(store)
    changed = sorted(b for b in set(before) | set(after) if before.get(b) != after.get(b))
    return count, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    config = load_config()
    db = open_database(config, "reporting")
    try:
        count, changed = rebuild(ReportingStore(db), config.get("REPORT_TIMEZONE"))
    finally:
        db.client.close()
    print(f"rebuilt {count} application summaries; buckets changed: {len(changed)}")
    for bucket_id in changed[:50]:
        print(f"  {bucket_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
