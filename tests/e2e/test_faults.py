"""The fault suite, reduced: the same runs `python -m benchmarks.faults` makes, with fewer
applications and four of its faults — every service stopped with SIGTERM in turn mid-load, a
service killed, the database stopped for 10 s, every event delivered twice. Each runs the whole
system as `make run` does, on a database server and a RabbitMQ vhost of its own.
"""
import pytest

from benchmarks.faults import run_one


@pytest.mark.parametrize("fault, applications", [
    ("term-each", 120), ("kill-intake", 120), ("stop-database", 80), ("duplicates", 80)])
def test_nothing_accepted_is_lost_or_sent_twice_through_a_fault(fault, applications):
    row = run_one(fault, applications, concurrency=8, offset=0)  # databases of its own
    assert row["accepted"] > 0, row
    assert (row["lost"], row["no_sms"], row["doubled"]) == (0, 0, 0), row
    assert row["counts_match"], row
    assert row["outbox_left"] == 0, row  # a stop flushes what it wrote, a kill's is relayed
    # nothing parked either: a send cut off by the outage is finished within its own run
    assert not row["dead_letters"], row
