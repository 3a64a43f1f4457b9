"""What a message costs notify on the real store, and how fast held messages go out.

Three figures, each on a fresh database of the configured server (the local FerretDB by
default), with the development sinks as providers and recipients resolved in process (no RPC,
which the services add):

1. **sent**: `send_once` for N distinct causes, one citizen SMS each — messages per second
   and the store commands behind each (claim, list, opt-out check, outcome with its event);
2. **staff**: one routed case's staff alerts (primary and backup expert, SMS and e-mail: four
   messages) — cases per second;
3. **held**: N messages held by the quiet hours, then released by `release_due` at 08:00 —
   messages per second through the sweep (the rate the morning queue drains at, per process).

    .venv/bin/python -m benchmarks.notify_sends [--messages 500]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime

from pymongo import MongoClient

from services.common.config import load_config
from services.common.events import load_event, make_event
from services.notify import domain
from services.notify.providers import DevSinkEmailProvider, DevSinkSmsProvider
from services.notify.sending import Deliveries
from services.notify.store import NotifyStore

NIGHT = datetime(2026, 3, 3, 20, 0, tzinfo=UTC)  # 23:00 Istanbul
MORNING = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # 08:00
CITIZEN = domain.Recipient("sms", "+905551112233", citizen_ref="c" * 64)


def cause(event_type: str, application_id: str) -> dict:
    data = {"tracking_code": "K7M4QX2D9", "state": "waiting_citizen",
            "reason": "Sokak adını yazar mısınız?"}
    if event_type == "application_routed":
        data = {"tracking_code": "K7M4QX2D9", "category": "road_damage", "tier": "district",
                "institution": "mezitli_bld", "institution_name": "Mezitli Belediyesi",
                "unit": "mezitli_bld.works", "unit_name": "Fen İşleri Müdürlüğü",
                "rule": "bench", "read_hours": 4, "resolve_hours": 24}
    return load_event(make_event(event_type, application_id, data))


def resolve(cause: dict, spec: dict) -> domain.Recipient:
    if spec["to"] == "staff":
        return domain.Recipient(spec["channel"], "+905320000020" if spec["channel"] == "sms"
                                else "uzman@mersin.bel.tr", staff=True)
    return CITIZEN


def run(uri: str, messages: int) -> None:
    client = MongoClient(uri, tz_aware=True)
    name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    db = client[name]
    sink = tempfile.mkdtemp(prefix="notify-bench-")
    store = NotifyStore(db)
    store.ensure_indexes()
    clock = {"now": datetime(2026, 3, 3, 9, 0, tzinfo=UTC)}
    deliveries = Deliveries(store, DevSinkSmsProvider(sink), DevSinkEmailProvider(sink, "b@x"),
                            domain.Composer("https://acikkapi.example", link_secret="s" * 32),
                            clock=lambda: clock["now"])
    try:
        started = time.perf_counter()
        for n in range(messages):
            deliveries.send_once(cause("case_waiting", f"sent-{n}"), "case_waiting",
                                 {"to": "applicant"}, resolve)
        took = time.perf_counter() - started
        print(f"sent:  {messages} citizen SMS in {took:.2f} s — {messages / took:.0f}/s, "
              f"{1000 * took / messages:.2f} ms each")

        cases = max(messages // 4, 1)
        started = time.perf_counter()
        for n in range(cases):
            event = cause("application_routed", f"staff-{n}")
            for code in ("mbb-0020", "mbb-0021"):
                for channel in ("sms", "email"):
                    deliveries.send_once(event, "case_assigned",
                                         {"to": "staff", "code": code, "channel": channel},
                                         resolve, tag=f"{code}:{channel}")
        took = time.perf_counter() - started
        print(f"staff: {cases} routed cases, 4 alerts each, in {took:.2f} s — "
              f"{cases / took:.0f} cases/s ({4 * cases / took:.0f} messages/s)")

        clock["now"] = NIGHT
        for n in range(messages):
            deliveries.send_once(cause("case_waiting", f"held-{n}"), "case_waiting",
                                 {"to": "applicant"}, resolve)
        held = store.deferred.count_documents({})
        clock["now"] = MORNING
        started = time.perf_counter()
        released = 0
        while True:
            taken = deliveries.release_due(resolve)
            if not taken:
                break
            released += taken
        took = time.perf_counter() - started
        print(f"held:  {held} held overnight, {released} released at 08:00 in {took:.2f} s — "
              f"{released / took:.0f}/s")
    finally:
        client.drop_database(name)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    run(load_config()["MONGO_URI"], args.messages)


if __name__ == "__main__":
    main()
