"""Reporting's aggregates: what each application summary contributes to the report buckets, and
the reports read back from them. Pure: no nameko, no pymongo.

A *bucket* is one document per (granularity, period, level): `d|2026-12-02|unit`,
`m|2026-12|all`, `e|all|institution` (`e`: since the beginning, for the open backlog). It holds,
per key of its level, a map of counters:

- level `all` has the one key `*`; `institution`, `unit`, `category`, `district` one key per
  value; `cell` one key per `institution|unit|category|district` combination, which answers any
  mix of filters;
- the received side of an application (its dimensions, current status, escalation level,
  SLA outcomes, rating, reopen count, open/overdue) counts in the buckets of the local day, ISO
  week and month it was received; the concluded side (concluded, resolution hours) in those of
  the day, week and month it was first concluded;
- the `e` buckets keep only the open backlog (open, overdue, by age and institution) and
  `received` (for the cells index).

An application's contribution is a function of its summary alone, so an event changes the
buckets by the summary's parts after minus its parts before (`parts`, spread by `spread`),
and a replay of every event from nothing gives the same buckets (the rebuild). A report over a
period reads the month buckets of the whole months in it, the week buckets of the whole weeks
left, and the day buckets of the rest, never the applications.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta, tzinfo

ALL = "*"
NONE = "~"  # a missing value, as a key (the report shows it as null)
# Where an application is done from the municipality's side: no longer in the backlog.
FINAL_STATES = ("closed", "referred", "answered", "merged")
INT_DIMENSIONS = ("level", "satisfaction", "reopen_count")
# What only the since-the-beginning `e` buckets keep: the backlog as it is now, by age and by
# institution (the gauges); in a day or a month they would say nothing more.
NOW_ONLY = ("open_since:", "open_in:", "overdue_in:")
# What else the `e` buckets keep: the backlog's totals, and `received` for the cells index. The
# rest (categories, neighbourhoods, statuses…) would make them the largest buckets, rewritten by
# every batch, for no question.
SINCE_EVER = ("open", "overdue", "received")
# the applications first concluded in a week, listed by id in that week's cells only: the
# mayor's call-back list draws from them without scanning the summaries
LISTED = ("concluded_app:",)

Counters = dict[str, int]
# (bucket id, key within the bucket) -> counters
Contribution = dict[tuple[str, str], Counters]


def _value(value: object) -> str:
    return NONE if value is None else str(value)


def level_keys(summary: dict) -> dict[str, str]:
    """The key an application counts under at each level (its current unit and institution)."""
    inst, unit = _value(summary.get("institution")), _value(summary.get("unit"))
    cat, dist = _value(summary.get("category")), _value(summary.get("district"))
    return {"all": ALL, "institution": inst, "unit": unit, "category": cat, "district": dist,
            "cell": f"{inst}|{unit}|{cat}|{dist}"}


def is_open(summary: dict) -> bool:
    return summary.get("status") not in FINAL_STATES


def is_overdue(summary: dict) -> bool:
    """Open, and its resolve deadline was breached with no outcome recorded since."""
    breached = (summary.get("breached") or {}).get("resolve")
    if not is_open(summary) or breached is None:
        return False
    finished = (summary.get("sla") or {}).get("resolve")
    return finished is None or finished["at"] < breached


def whole_hours(hours: float) -> int:
    """Resolution time as the reports count it: whole hours, rounded up (a quarter hour is 1)."""
    return max(0, math.ceil(hours - 1e-9))


def received_counters(summary: dict, tz: tzinfo) -> Counters:
    """What an application counts on its received side."""
    sla = summary.get("sla") or {}
    values = {
        "category": summary.get("category"),
        "channel": summary.get("channel"),
        "kind": summary.get("kind"),
        "district": summary.get("district"),
        "neighbourhood": summary.get("neighbourhood"),
        "status": summary.get("status"),
        "level": summary.get("level") or 0,
        "satisfaction": summary.get("satisfaction"),
        "read_sla": (sla.get("read") or {}).get("outcome"),
        "resolve_sla": (sla.get("resolve") or {}).get("outcome"),
        "reopen_count": summary.get("reopen_count") or len(summary.get("reopened") or []),
        "caller_type": summary.get("caller_type"),
        "tier": summary.get("tier"),
        "unit": summary.get("unit"),
        "institution": summary.get("institution"),
    }
    counters = {"received": 1, **{f"{name}:{_value(value)}": 1
                                  for name, value in values.items()}}
    for deadline in ("read", "resolve"):
        outcome = (sla.get(deadline) or {}).get("outcome")
        if outcome:
            counters[f"sla_unit:{_value(summary.get('unit'))}|{deadline}|{outcome}"] = 1
            counters[f"sla_category:{_value(summary.get('category'))}|{deadline}|{outcome}"] = 1
    if is_open(summary):
        institution = _value(summary.get("institution"))
        counters["open"] = 1
        day = summary["received_at"].astimezone(tz).date().isoformat()
        counters[f"open_since:{day}"] = 1
        counters[f"open_in:{institution}"] = 1
        if is_overdue(summary):
            counters["overdue"] = 1
            counters[f"overdue_in:{institution}"] = 1
    if summary.get("tier") == "outside" or summary.get("referred_at"):
        counters["referred"] = 1
    if (summary.get("level") or 0) > 0:
        counters["escalated"] = 1
    return counters


def concluded_counters(summary: dict) -> Counters:
    """What an application counts on its concluded side (where it was first concluded)."""
    counters = {"concluded": 1, f"{LISTED[0]}{summary['application_id']}": 1}
    if summary.get("resolution_hours") is not None:
        counters[f"hours:{whole_hours(summary['resolution_hours'])}"] = 1
    return counters


Part = tuple[str, str, tuple[tuple[str, str], ...]]  # (side, local day, level keys)


def parts(summary: dict | None, tz: tzinfo) -> list[tuple[Part, Counters]]:
    """What `summary` counts, before it is spread over the buckets: its received side on its
    local received day, its concluded side on the day it was first concluded."""
    if not summary or summary.get("received_at") is None:
        return []
    keys = tuple(level_keys(summary).items())
    out = [(("received", summary["received_at"].astimezone(tz).date().isoformat(), keys),
            received_counters(summary, tz))]
    if summary.get("concluded_at") is not None:
        out.append((("concluded", summary["concluded_at"].astimezone(tz).date().isoformat(),
                     keys), concluded_counters(summary)))
    return out


Slot = tuple[str, str, str, str]  # (side, local day, level, key)
SIDES = ("received", "concluded")


def _add(total: dict[Slot, Counters], slot: Slot, counters: Counters, sign: int) -> None:
    into = total.get(slot)
    if into is None:
        total[slot] = into = {}
    for name, count in counters.items():
        into[name] = into.get(name, 0) + sign * count


def add_change(total: dict[Slot, Counters], now: list[tuple[Part, Counters]],
               was: list[tuple[Part, Counters]]) -> None:
    """Add what an application counts `now` minus what it counted before (`was`, both from
    `parts`) to `total`, per side, local day, level and key, in place. Where a side's day and a
    level's key did not move, only the counters that changed are added: most cancel (a status
    change moves two counters of twenty), and adding both whole was most of `spread`'s work."""
    after = {part[0]: (part, counters) for part, counters in now}  # one part per side
    before = {part[0]: (part, counters) for part, counters in was}
    for side in SIDES:
        new, old = after.get(side), before.get(side)
        if new and old and new[0][1] == old[0][1]:
            (_, day, keys), counters = new
            (_, _, old_keys), old_counters = old
            changed = {name: count - old_counters.get(name, 0)
                       for name, count in counters.items()
                       if count != old_counters.get(name, 0)}
            changed.update((name, -count) for name, count in old_counters.items()
                           if name not in counters and count)
            for (level, key), (_, old_key) in zip(keys, old_keys, strict=True):
                if key == old_key:
                    if changed:
                        _add(total, (side, day, level, key), changed, 1)
                else:
                    _add(total, (side, day, level, key), counters, 1)
                    _add(total, (side, day, level, old_key), old_counters, -1)
            continue
        for sign, piece in ((1, new), (-1, old)):
            if piece:
                (_, day, keys), counters = piece
                for level, key in keys:
                    _add(total, (side, day, level, key), counters, sign)


def bucket_id(granularity: str, period: str, level: str, key: str) -> str:
    """Where a key's counters live: the period's one `all` document; one document per key of
    the other levels (at 10 million applications, one document for a month's units would hold
    200,000 counters and a month's cells pass MongoDB's 16 MB); and the cells of one unit in
    one document (`institution|unit`), so that a batch writes a document per unit and period
    touched, not one per application (nearly every application has a cell of its own). The
    cells of a period are listed in its `cells` index, for questions that mix filters."""
    if level == "all":
        return f"{granularity}|{period}|all"
    if level == "cell":
        institution, unit, _ = key.split("|", 2)
        return f"{granularity}|{period}|cell|{institution}|{unit}"
    return f"{granularity}|{period}|{level}|{key}"


def _slots(granularity: str, period: str, level: str, key: str,
           counters: Counters) -> list[tuple[tuple[str, str], Counters]]:
    slots = [((bucket_id(granularity, period, level, key), key), counters)]
    if level == "cell":
        # the index counts the applications (received or concluded there) the cell holds; a
        # cell whose count falls to 0 leaves it
        refs = counters.get("received", 0) + counters.get("concluded", 0)
        if refs:
            slots.append(((f"{granularity}|{period}|cells", key), {"refs": refs}))
    return slots


def _periods(day: str) -> dict[str, str]:
    """The periods a local day falls in: itself, its ISO week, its month, and `all`."""
    year, week, _ = date.fromisoformat(day).isocalendar()
    return {"d": day, "w": f"{year}-W{week:02d}", "m": day[:7], "e": "all"}


# the periods both sides count in; the received side counts in `e` too, its backlog only
DATED = ("d", "w", "m")


def _merge(out: dict, slot: object, counters: Counters) -> None:
    into = out.get(slot)
    if into is None:
        out[slot] = dict(counters)
    else:
        for name, count in counters.items():
            into[name] = into.get(name, 0) + count


def spread(total: dict[Slot, Counters]) -> Contribution:
    """A batch's changes (`add_change`: per side, local day, level and key) spread over the
    buckets: day, ISO week and month of each level, and (received side) the
    since-the-beginning `e` buckets, the only ones that keep the backlog's age; the concluded
    applications' ids only in their week's cells (`LISTED`); counters that came to zero left
    out. Spreading once per batch, after adding up the changes, is what keeps a batch's cost at
    one addition per application rather than one per bucket; and the changes are added up per
    day first, then the days into their week, month and `e` (a day holds many applications of
    one unit, category or district: fewer additions)."""
    days: dict[Slot, Counters] = {}
    direct: dict[tuple[str, str, str, str], Counters] = {}  # (granularity, period, level, key)
    for slot, counters in total.items():
        side, day, level, key = slot
        dated, now, listed = {}, {}, {}
        for name, count in counters.items():
            if count:
                (now if name.startswith(NOW_ONLY) else listed if name.startswith(LISTED)
                 else dated)[name] = count
        if dated:
            days[slot] = dated
        if side == "received":
            ever = {name: dated[name] for name in SINCE_EVER if name in dated}
            if now or ever:
                _merge(direct, ("e", "all", level, key), {**ever, **now})
        if listed and level == "cell":
            _merge(direct, ("w", _periods(day)["w"], level, key), listed)
    out: Contribution = {}
    periods_of: dict[str, dict[str, str]] = {}
    for (_side, day, level, key), counters in days.items():
        periods = periods_of.get(day) or periods_of.setdefault(day, _periods(day))
        for granularity in DATED:
            for slot, counters_ in _slots(granularity, periods[granularity], level, key,
                                          counters):
                _merge(out, slot, counters_)
    for (granularity, period, level, key), counters in direct.items():
        for slot, counters_ in _slots(granularity, period, level, key, counters):
            _merge(out, slot, counters_)
    return {slot: kept for slot, counters in out.items()
            if (kept := {name: count for name, count in counters.items() if count})}


def bucket_ids(pieces: Iterable[Part]) -> set[str]:
    """The buckets some parts (`parts`' first items) count in: where the names an application
    carries are kept."""
    out = set()
    for side, day, keys in pieces:
        periods = _periods(day)
        for granularity in DATED + (("e",) if side == "received" else ()):
            out.update(bucket_id(granularity, periods[granularity], level, key)
                       for level, key in keys)
    return out


def apply_counters(stored: Counters | None, delta: Counters) -> Counters:
    """A bucket key's counters after `delta` (counters that reach zero are dropped)."""
    out = dict(stored or {})
    for name, count in delta.items():
        value = out.get(name, 0) + count
        if value:
            out[name] = value
        else:
            out.pop(name, None)
    return out


def names_of(summary: dict) -> dict[str, str]:
    """Display names the reports show next to unit and institution codes."""
    out = {}
    if summary.get("unit") and summary.get("unit_name"):
        out[f"unit:{summary['unit']}"] = summary["unit_name"]
    if summary.get("institution") and summary.get("institution_name"):
        out[f"institution:{summary['institution']}"] = summary["institution_name"]
    return out


# -- reading reports back ------------------------------------------------------------------------

def level_for(match: dict) -> tuple[str, list[str] | None]:
    """The coarsest level that answers `match` exactly, and the keys to read there (None: every
    key of that level that passes `passes(match, key)`)."""
    fields = {name for name, value in match.items() if value not in (None, "")}
    if not fields:
        return "all", [ALL]
    if len(fields) == 1:
        (name,) = fields
        value = match[name]
        if isinstance(value, dict):  # {"$in": [...]}
            return name, sorted({str(v) for v in value["$in"]})
        return name, [str(value)]
    return "cell", None


def passes(match: dict, cell_key: str) -> bool:
    """Whether a `cell` key (`institution|unit|category|district`) is within `match`."""
    if not match:
        return True
    inst, unit, cat, dist = cell_key.split("|", 3)
    for name, have in (("institution", inst), ("unit", unit), ("category", cat),
                       ("district", dist)):
        want = match.get(name)
        if want in (None, ""):
            continue
        allowed = {str(v) for v in want["$in"]} if isinstance(want, dict) else {str(want)}
        if have not in allowed:
            return False
    return True


def period_buckets(first: date, last: date, use: tuple[str, ...] = ("m", "w")
                   ) -> list[tuple[str, str]]:
    """`[(granularity, period)]` covering `first`..`last` with the fewest buckets: whole months
    as months, whole ISO weeks as weeks, the rest as days (30 days: 4 weeks and 2 days), of
    the granularities in `use` (a monthly series takes no weeks, which cross months)."""
    out = []
    day = first
    while day <= last:
        month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if "m" in use and day.day == 1 and month_end <= last:
            out.append(("m", day.isoformat()[:7]))
            day = month_end + timedelta(days=1)
        elif "w" in use and day.weekday() == 0 and day + timedelta(days=6) <= last:
            out.append(("w", _periods(day.isoformat())["w"]))
            day += timedelta(days=7)
        else:
            out.append(("d", day.isoformat()))
            day += timedelta(days=1)
    return out


def piece_start(granularity: str, period: str) -> date:
    """The first day of a bucket's period."""
    if granularity == "w":
        year, week = period.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    return date.fromisoformat(period if granularity == "d" else f"{period}-01")


def sum_keys(buckets: Iterable[dict], keys: list[str] | None, match: dict) -> Counters:
    """The counters of the chosen keys of some buckets, added up."""
    total: Counters = defaultdict(int)
    for bucket in buckets:
        for key, counters in (bucket.get("keys") or {}).items():
            if keys is None and not passes(match, key):
                continue
            if keys is not None and key not in keys:
                continue
            for name, count in counters.items():
                total[name] += count
    return dict(total)


def _typed(dimension: str, raw: str) -> object:
    if raw == NONE:
        return None
    if dimension in INT_DIMENSIONS:
        return int(raw)
    return raw


Families = dict[str, dict[str, int]]


def families(counters: Counters) -> Families:
    """`{"category": {"road_damage": 3, …}, "hours": {"12": 1}, …}`: the `family:value`
    counters grouped in one pass (a month's `all` bucket holds thousands of them)."""
    out: Families = defaultdict(dict)
    for name, count in counters.items():
        family, sep, value = name.partition(":")
        if sep and count:
            out[family][value] = count
    return out


def breakdown(groups: Families, dimension: str) -> list[dict]:
    """`[{key, count}]` of one received-side dimension."""
    return [{"key": _typed(dimension, value), "count": count}
            for value, count in groups.get(dimension, {}).items()]


def histogram(groups: Families, family: str = "hours") -> dict[int, int]:
    """`{whole hours: count}` from the `hours:` counters."""
    return {int(value): count for value, count in groups.get(family, {}).items()}


def quantile_of_histogram(hist: dict[int, int], q: float) -> int | None:
    """The `q` quantile (nearest rank) of the values a histogram counts."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(total * q - 1e-9))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return None


def sla_table(groups: Families, family: str) -> list[dict]:
    """`[{key, read_met, read_breached, resolve_met, resolve_breached}]` by unit or category."""
    rows: dict[str, dict] = {}
    for name, count in groups.get(family, {}).items():
        key, deadline, outcome = name.rsplit("|", 2)
        row = rows.setdefault(key, {"key": _typed("", key), "read_met": 0, "read_breached": 0,
                                    "resolve_met": 0, "resolve_breached": 0})
        row[f"{deadline}_{outcome}"] += count
    for row in rows.values():
        for deadline in ("read", "resolve"):
            decided = row[f"{deadline}_met"] + row[f"{deadline}_breached"]
            row[f"{deadline}_compliance"] = (round(row[f"{deadline}_met"] / decided, 4)
                                             if decided else None)
    return list(rows.values())


def backlog_ages(groups: Families, today: date) -> list[dict]:
    """Open applications by age band (days since received), from the `open_since:` counters."""
    bands = [("0-2", 0, 2), ("3-7", 3, 7), ("8-30", 8, 30), ("31-90", 31, 90),
             ("90+", 91, None)]
    out = {label: 0 for label, _, _ in bands}
    for day, count in groups.get("open_since", {}).items():
        age = (today - date.fromisoformat(day)).days
        for label, low, high in bands:
            if age >= low and (high is None or age <= high):
                out[label] += count
                break
    return [{"key": label, "count": count} for label, count in out.items()]

