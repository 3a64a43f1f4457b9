"""Every figure of every report, over a synthetic history of 100,000 applications (fixed seed),
against a brute-force count of the generator's own truth; and the rebuild gives the same buckets.

The projection runs exactly as in the service (`Projector` over batches of events in a shuffled
order, as separate queues deliver them), over an in-memory double of the store's narrow
interface: the store itself is exercised on the real server by the service tests, and 700,000
events through FerretDB would take this suite's whole budget. What is checked here is the
arithmetic: buckets, levels, periods, deltas, journal and rebuild.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from services.reporting import domain
from services.reporting.reports import Reports

APPLICATIONS = 100_000
SEED = 20261202
TZ = domain.report_timezone("Europe/Istanbul")
TODAY = date(2026, 11, 30)
CHANNELS = ("web", "mobile", "call_centre", "desk", "sms", "email", "muhtar", "cimer")
KINDS = ("complaint", "request", "suggestion", "information")
DISTRICTS = ("Akdeniz", "Mezitli", "Toroslar", "Yenişehir", "Tarsus", None)
CATEGORIES = {  # category -> (institution, unit)
    "road_damage": ("mersin_bb", "mersin_bb.roads"),
    "street_light": ("mersin_bb", "mersin_bb.lighting"),
    "park": ("mezitli_bld", "mezitli_bld.parks"),
    "garbage": ("mezitli_bld", "mezitli_bld.cleaning"),
    "water": ("meski", "meski.network"),
    "school": ("mersin_valilik", "mersin_valilik.education"),
    "noise": ("yenisehir_bld", "yenisehir_bld.police"),
}
NAMES = {unit: unit.split(".")[1].title() for _, unit in CATEGORIES.values()}


class MemoryStore:
    """The projector's and the reports' store interface, in memory (see the module note)."""

    def __init__(self):
        self.pending: dict[str, dict] = {}
        self.facts: dict[str, dict] = {}
        self.applications: dict[str, dict] = {}
        self.buckets: dict[str, dict] = {}
        self.journal_doc: dict | None = None

    def enqueue(self, event: dict) -> bool:
        if event["event_id"] in self.pending:
            return False
        self.pending[event["event_id"]] = event
        return True

    def waiting(self, limit: int) -> list[dict]:
        return [event for _, event in zip(range(limit), self.pending.values(), strict=False)]

    def take_lease(self, owner, now, seconds) -> bool:
        return True

    def journal(self):
        return self.journal_doc

    def write_journal(self, batch: dict) -> None:
        self.journal_doc = batch

    def clear_journal(self) -> None:
        self.journal_doc = None

    # No copies: the projector builds new summaries and rewrites every bucket it reads.
    def summaries(self, ids, spawn_map=None) -> dict:
        return {i: self.applications[i] for i in ids if i in self.applications}

    def enqueue_many(self, events) -> None:
        for event in events:
            self.enqueue(event)

    @staticmethod
    def pack_summaries(summaries) -> list:
        return list(summaries)

    def write_summaries(self, docs, spawn_map=None, new=()) -> None:
        for doc in docs:
            self.applications[doc["_id"]] = doc

    @staticmethod
    def pack_facts(batch, facts) -> list:
        return list(facts)

    def keep_facts(self, facts) -> None:
        for fact in facts:
            self.facts.setdefault(fact["_id"], fact)

    def read_buckets(self, ids, settled=True) -> dict:
        return {i: self.buckets[i] for i in ids if i in self.buckets}

    def resume_rewrite(self, spawn_map=None) -> bool:
        return False  # each write is whole here

    @staticmethod
    def pack_buckets(docs) -> list:
        return list(docs)

    def write_buckets(self, docs, spawn_map=None, new=()) -> list[str]:
        for doc in docs:
            self.buckets[doc["_id"]] = doc
        return []

    def drop_waiting(self, ids) -> None:
        for event_id in ids:
            self.pending.pop(event_id, None)

    def all_facts(self):
        return list(self.facts.values())

    def get_summary(self, application_id):
        return self.applications.get(application_id)

    def callback_note(self, week, application_id):
        return None

    def reset_projection(self) -> None:
        self.applications, self.buckets = {}, {}


def _history(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """`(truths, events)`: per application what finally holds, and the events saying it."""
    truths, events = [], []
    start = datetime(2026, 7, 1, tzinfo=UTC)
    span = (datetime(2026, 11, 30, 20, tzinfo=UTC) - start).total_seconds()
    for n in range(APPLICATIONS):
        app = f"app{n:06d}"
        at = start + timedelta(seconds=rng.random() * span)
        category = rng.choice(list(CATEGORIES))
        institution, unit = CATEGORIES[category]
        truth = {"app": app, "received_at": at, "category": category,
                 "channel": rng.choice(CHANNELS), "kind": rng.choice(KINDS),
                 "district": rng.choice(DISTRICTS),
                 "neighbourhood": rng.choice(("Limonluk", "Çiftlikköy", "Menteş", None)),
                 "caller_type": "muhtar" if rng.random() < 0.1 else "citizen",
                 "status": "received", "unit": None, "institution": None, "tier": None,
                 "level": 0, "read": None, "resolve": None, "breached_open": False,
                 "satisfaction": None, "reopens": 0, "concluded_at": None, "referred": False}
        mine = []

        def emit(etype, data, when, truth=truth, mine=mine):
            # envelopes as `load_event` leaves them (built directly: validating 700,000 with
            # marshmallow would be most of this test's time, and the schemas are tested)
            mine.append({"event_id": f"{truth['app']}-{len(mine):02d}", "type": etype,
                         "version": 1, "application_id": truth["app"], "occurred_at": when,
                         "data": data})

        emit("application_received", {
            "tracking_code": f"K{n:08d}", "kind": truth["kind"], "category": category,
            "channel": truth["channel"], "caller_type": truth["caller_type"],
            "location": {"province": "Mersin", "district": truth["district"],
                         "neighbourhood": truth["neighbourhood"]}, "received_at": at}, at)
        roll = rng.random()
        when = at + timedelta(minutes=rng.randint(1, 60))
        if roll < 0.05:
            pass  # waits at the desk, never routed
        elif roll < 0.15:
            emit("application_referred", {"category": category, "institution": "toroslar_gaz",
                                          "institution_name": "Toroslar", "rule": "outside"},
                 when)
            truth.update(status="referred", institution="toroslar_gaz", tier="outside",
                         referred=True, concluded=True)
        else:
            emit("application_routed", {"category": category, "tier": "metropolitan",
                                        "institution": institution, "unit": unit,
                                        "unit_name": NAMES[unit], "rule": "m"}, when)
            truth.update(status="assigned", unit=unit, institution=institution,
                         tier="metropolitan")
            steps = rng.random()
            if rng.random() < 0.05:  # transferred to another institution's unit
                when += timedelta(hours=rng.randint(1, 30))
                other_inst, other = CATEGORIES[rng.choice(list(CATEGORIES))]
                emit("case_transferred", {"state": "assigned", "unit": other,
                                          "unit_name": NAMES[other], "institution": other_inst,
                                          "from_unit": unit}, when)
                truth.update(unit=other, institution=other_inst)
            if steps < 0.75:
                when += timedelta(hours=rng.randint(1, 48))
                emit("case_acknowledged", {"state": "acknowledged"}, when)
                outcome = "met" if rng.random() < 0.8 else "breached"
                emit("sla_outcome_recorded", {"deadline": "read", "outcome": outcome,
                                              "overrun_hours": 0.0 if outcome == "met" else 3.0},
                     when)
                truth.update(status="acknowledged", read=outcome)
            if rng.random() < 0.1:
                level = rng.randint(1, 4)
                for lvl in range(1, level + 1):
                    emit("case_escalated", {"from_level": lvl - 1, "to_level": lvl,
                                            "to_role": "x", "deadline": "resolve"},
                         when + timedelta(minutes=lvl))
                truth["level"] = level
            if steps < 0.6:
                when += timedelta(hours=rng.randint(1, 200), minutes=rng.randint(0, 59))
                emit("case_resolved", {"state": "resolved", "result": "ok"}, when)
                when += timedelta(minutes=30)
                emit("case_closed", {"state": "closed"}, when)
                outcome = "met" if rng.random() < 0.7 else "breached"
                emit("sla_outcome_recorded", {"deadline": "resolve", "outcome": outcome,
                                              "overrun_hours": 0.0 if outcome == "met" else 9.0},
                     when)
                truth.update(status="closed", resolve=outcome, concluded_at=when)
                if rng.random() < 0.4:
                    score = rng.randint(1, 5)
                    emit("satisfaction_recorded", {"score": score, "source": "sms"},
                         when + timedelta(hours=2))
                    truth["satisfaction"] = score
                if rng.random() < 0.05:
                    when += timedelta(days=1)
                    emit("case_reopened", {"state": "assigned", "reason": "again"}, when)
                    truth.update(status="assigned", reopens=1)
            elif steps < 0.7 and rng.random() < 0.5:
                emit("sla_breached", {"deadline": "resolve", "due_at": when}, when)
                truth["breached_open"] = True
        truths.append(truth)
        events.extend(mine)
    return truths, events


def _brute(truths: list[dict], first: date, last: date, keep) -> dict:
    """The summary's figures, counted one application at a time from the generator's truth."""
    lo = datetime.combine(first, datetime.min.time(), tzinfo=TZ)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=TZ)
    inside = [t for t in truths if lo <= t["received_at"] < hi and keep(t)]
    concluded = [t for t in truths if t["concluded_at"] and lo <= t["concluded_at"] < hi
                 and keep(t)]

    def by(field):
        return dict(Counter(t[field] for t in inside))

    final = ("closed", "referred", "answered", "merged")
    hours = sorted(math.ceil((t["concluded_at"] - t["received_at"]).total_seconds() / 3600
                             - 1e-9) for t in concluded)
    rated = [t["satisfaction"] for t in inside if t["satisfaction"]]
    sla_units: dict = defaultdict(Counter)
    for t in inside:
        for deadline in ("read", "resolve"):
            if t[deadline]:
                sla_units[t["unit"]][f"{deadline}_{t[deadline]}"] += 1
    return {
        "total": len(inside), "by_category": by("category"), "by_channel": by("channel"),
        "by_kind": by("kind"), "by_district": by("district"),
        "by_neighbourhood": by("neighbourhood"), "by_status": by("status"),
        "by_level": by("level"), "by_satisfaction": by("satisfaction"),
        "by_read_sla": by("read"), "by_resolve_sla": by("resolve"),
        "by_reopen_count": by("reopens"), "by_caller_type": by("caller_type"),
        "by_tier": by("tier"),
        "by_unit": {u: c for u, c in by("unit").items() if u is not None},
        "open": sum(t["status"] not in final for t in inside),
        "overdue": sum(t["status"] not in final and t["breached_open"] for t in inside),
        "referred": sum(t["referred"] for t in inside),
        "escalated": sum(t["level"] > 0 for t in inside),
        "concluded": len(concluded),
        "resolution_hours_median": hours[max(1, math.ceil(len(hours) * 0.5)) - 1]
        if hours else None,
        "resolution_hours_p90": hours[max(1, math.ceil(len(hours) * 0.9)) - 1]
        if hours else None,
        "satisfaction_average": round(sum(rated) / len(rated), 2) if rated else None,
        "sla_by_unit": {u: dict(c) for u, c in sla_units.items()},
    }


def _as_dicts(answer: dict) -> dict:
    out = {name: answer[name] for name in ("total", "open", "overdue", "referred", "escalated",
                                           "concluded", "resolution_hours_median",
                                           "resolution_hours_p90", "satisfaction_average")}
    for name, value in answer.items():
        if name.startswith("by_"):
            out[name] = {row["key"]: row["count"] for row in value}
    out["sla_by_unit"] = {row["key"]: {k: row[k] for k in ("read_met", "read_breached",
                                                           "resolve_met", "resolve_breached")
                                       if row[k]} for row in answer["sla_by_unit"]}
    return out


@pytest.fixture(scope="module")
def history():
    rng = random.Random(SEED)
    truths, events = _history(rng)
    rng.shuffle(events)  # separate queues: no order across event types
    store = MemoryStore()
    reports = Reports(store, "Europe/Istanbul",
                      clock=lambda: datetime(2026, 11, 30, 12, tzinfo=UTC))
    reports.projector.batch = 200_000  # 3 batches, each touching most of the buckets
    for event in events:
        store.enqueue(event)
        if len(store.pending) >= 200_000:
            reports.projector.run()
    store.enqueue(events[17])  # a redelivery of an event already projected changes nothing
    reports.projector.run()
    return truths, store, reports


QUERIES = [
    ("the whole history", date(2026, 7, 1), date(2026, 11, 30), {}, lambda t: True),
    ("one month", date(2026, 9, 1), date(2026, 9, 30), {}, lambda t: True),
    ("days around a month", date(2026, 8, 20), date(2026, 10, 3), {}, lambda t: True),
    ("a unit", date(2026, 7, 1), date(2026, 11, 30), {"unit": "mersin_bb.roads"},
     lambda t: t["unit"] == "mersin_bb.roads"),
    ("an institution's family", date(2026, 10, 1), date(2026, 11, 15),
     {"institution": {"$in": ["mersin_bb", "meski"]}},
     lambda t: t["institution"] in ("mersin_bb", "meski")),
    ("a category", date(2026, 11, 1), date(2026, 11, 30), {"category": "park"},
     lambda t: t["category"] == "park"),
    ("a district", date(2026, 7, 1), date(2026, 9, 30), {"district": "Mezitli"},
     lambda t: t["district"] == "Mezitli"),
    ("a unit and a category", date(2026, 8, 3), date(2026, 11, 30),
     {"unit": "mezitli_bld.parks", "category": "park"},
     lambda t: t["unit"] == "mezitli_bld.parks" and t["category"] == "park"),
    ("an institution and a district", date(2026, 7, 1), date(2026, 11, 30),
     {"institution": "mezitli_bld", "district": "Mezitli"},
     lambda t: t["institution"] == "mezitli_bld" and t["district"] == "Mezitli"),
]


@pytest.mark.parametrize(("title", "first", "last", "match", "keep"), QUERIES,
                         ids=[q[0] for q in QUERIES])
def test_every_figure_of_the_summary_matches_a_brute_force_count(history, title, first, last,
                                                                 match, keep):
    truths, _, reports = history
    answer = _as_dicts(reports.summary(first, last, match))
    expected = _brute(truths, first, last, keep)
    assert answer == expected


def test_the_series_and_the_backlog_match_a_brute_force_count(history):
    truths, _, reports = history
    month = reports.series(date(2026, 7, 1), date(2026, 11, 30), "month",
                           {"unit": "mersin_bb.roads"})
    for row in month["items"]:
        first = date.fromisoformat(f"{row['period']}-01")
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        expected = _brute(truths, first, last, lambda t: t["unit"] == "mersin_bb.roads")
        assert (row["received"], row["concluded"], row["resolution_hours_median"],
                row["resolution_hours_p90"]) == (
            expected["total"], expected["concluded"], expected["resolution_hours_median"],
            expected["resolution_hours_p90"])
    week = reports.series(date(2026, 11, 2), date(2026, 11, 15), "week", {})
    assert [row["received"] for row in week["items"]] == [
        _brute(truths, date(2026, 11, 2), date(2026, 11, 8), lambda t: True)["total"],
        _brute(truths, date(2026, 11, 9), date(2026, 11, 15), lambda t: True)["total"]]
    backlog = reports.backlog({})
    final = ("closed", "referred")
    still_open = [t for t in truths if t["status"] not in final]
    assert backlog["open"] == len(still_open)
    assert backlog["overdue"] == sum(t["breached_open"] for t in still_open)
    ages = Counter()
    for t in still_open:
        age = (TODAY - t["received_at"].astimezone(TZ).date()).days
        ages[next(label for label, high in (("0-2", 2), ("3-7", 7), ("8-30", 30),
                                            ("31-90", 90), ("90+", 10**6)) if age <= high)] += 1
    assert {row["key"]: row["count"] for row in backlog["by_age"]} == {
        label: ages.get(label, 0) for label in ("0-2", "3-7", "8-30", "31-90", "90+")}
    # a unit's scope with a category: the cells kept since the beginning answer it
    some = next(t for t in still_open if t["unit"] == "mersin_bb.roads")
    mixed = {"unit": "mersin_bb.roads", "category": some["category"]}
    within = [t for t in still_open
              if (t["unit"], t["category"]) == (mixed["unit"], mixed["category"])]
    assert within  # the history has open cases there
    narrowed = reports.backlog(mixed)
    assert (narrowed["open"], narrowed["overdue"]) == (
        len(within), sum(t["breached_open"] for t in within))
    gauges = Counter(), Counter()
    for t in still_open:
        gauges[0][t["institution"] or "none"] += 1
        gauges[1][t["institution"] or "none"] += t["breached_open"]
    assert {i: (o, d) for i, o, d in reports.institution_gauges()} == {
        inst: (count, gauges[1][inst]) for inst, count in gauges[0].items()}


@pytest.mark.parametrize("match", [{}, {"unit": "mersin_bb.roads"}], ids=["all", "a unit"])
def test_the_call_back_list_draws_from_the_week_s_first_conclusions(history, match):
    truths, _, reports = history
    week = "2026-W47"  # drawn from what was first concluded 9-15 November, Istanbul days
    monday, _ = domain.week_bounds(week)
    lo = datetime.combine(monday - timedelta(days=7), datetime.min.time(), tzinfo=TZ)
    hi = datetime.combine(monday, datetime.min.time(), tzinfo=TZ)
    expected = sorted(t["app"] for t in truths if t["concluded_at"]
                      and lo <= t["concluded_at"] < hi
                      and all(t[field] == value for field, value in match.items()))
    answer = reports.callbacks(week, match, contact=lambda application_id: None)
    assert answer["candidates"] == len(expected) > 4
    assert [item["application_id"] for item in answer["items"]] == domain.callback_sample(
        expected, week)


def test_a_rebuild_from_the_facts_gives_the_same_buckets(history):
    _, store, reports = history
    before = {bucket_id: doc["keys"] for bucket_id, doc in store.buckets.items() if doc["keys"]}
    reports.projector.rebuild(store.all_facts())
    after = {bucket_id: doc["keys"] for bucket_id, doc in store.buckets.items() if doc["keys"]}
    assert after == before and len(after) > 1000
