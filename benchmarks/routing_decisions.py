"""Routing decisions per second, in process, and proof that a decision costs the same whatever
the size of the organisation.

Builds the sample organisation (data/sample) and scaled copies of it — more neighbourhoods per
district (every fifth with neighbourhood overrides), more categories (each mapped by every
institution of its tier) — up to 1,000 neighbourhoods and 200 categories, and times
`domain.decide` two ways:

1. the *same* seeded queries (drawn from the sample) against each size: identical work per
   decision, only the directory grows — the rate must not fall with the size;
2. queries drawn from the 1000/200 organisation itself (a third aimed at its overrides): the
   rate on the big organisation with every rule path in the mix.

Rounds interleave the sizes so that load from other processes hits them alike. Bounded: a fixed
number of decisions per round (≤ 2,000,000) and of rounds (≤ 20); no network at all.

    .venv/bin/python -m benchmarks.routing_decisions [--decisions 100000] [--rounds 9]
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import random
import statistics
import time

import yaml

from services.common.catalogue import parse_categories
from services.common.config import DEFAULTS
from services.common.events import load_event, make_event, utcnow
from services.routing.directory import check_directory, parse_directory, read_organisation_file
from services.routing.domain import decide, open_case

TARGET = 20_000


def scaled(neighbourhoods: int = 0, categories: int = 0) -> tuple:
    """The sample grown to `neighbourhoods` and `categories`: (directory, catalogue)."""
    flat = read_organisation_file(DEFAULTS["ORGANISATION_PATH"])
    with open(DEFAULTS["CATALOGUE_PATH"], encoding="utf-8") as handle:
        records = yaml.safe_load(handle)["categories"]
    units_of: dict[str, list[str]] = {}
    for unit in flat["units"]:
        units_of.setdefault(unit["institution"], []).append(unit["code"])
    # more categories, cycling through the sample's; each institution that maps the original
    # maps the copy too (to one of its units)
    templates = [r for r in records if r["code"] != "unmapped_example"]
    i = 0
    while len(records) < categories:
        template = templates[i % len(templates)]
        code = f"{template['code']}_x{i}"
        records.append(dict(copy.deepcopy(template), code=code))
        for inst in flat["institutions"]:
            if template["code"] in (inst.get("category_units") or {}):
                units = units_of[inst["code"]]
                inst["category_units"][code] = units[i % len(units)]
        i += 1
    # more neighbourhoods; every fifth new one gets overrides for two categories
    districts = flat["locations"][0]["districts"]
    district_inst = {inst["area"].get("district"): inst for inst in flat["institutions"]
                     if inst["type"] == "district"}
    total, n = sum(len(d["neighbourhoods"]) for d in districts), 0
    while total < neighbourhoods:
        district = districts[n % len(districts)]
        name = f"Mahalle {n:04d}"
        district["neighbourhoods"].append(name)
        inst = district_inst.get(district["name"])
        if inst and n % 5 == 0:
            units = units_of[inst["code"]]
            for category in ("road_damage", "waste_collection"):
                inst.setdefault("neighbourhood_overrides", []).append(
                    {"district": district["name"], "neighbourhood": name,
                     "category": category, "unit": units[n % len(units)]})
        total, n = total + 1, n + 1
    directory = parse_directory(flat)
    catalogue = parse_categories({"categories": records})
    problems = check_directory(directory, catalogue)
    assert not problems, problems[:3]
    return directory, catalogue


def queries(directory, catalogue, count: int, seed: int = 4) -> list[tuple]:
    """A seeded mix of (category code, location); a third aimed at neighbourhood overrides."""
    rng = random.Random(seed)
    places = [(province, district, hood)
              for province, districts in directory.locations.items()
              for district, hoods in districts.items() for hood in hoods]
    overrides = [(rule, inst.province) for inst in directory.institutions.values()
                 for rule in inst.overrides]
    codes = [*catalogue, "teleportation"]  # one unknown category in the mix
    mix = []
    for i in range(count):
        if overrides and i % 3 == 0:
            rule, province = rng.choice(overrides)
            code, where = rule["category"], (province, rule["district"], rule["neighbourhood"])
        else:
            code, where = rng.choice(codes), rng.choice(places)
        mix.append((code, dict(zip(("province", "district", "neighbourhood"), where,
                                   strict=True))))
    return mix


def rate(directory, catalogue, mix) -> float:
    """Decisions per second over `mix` (category lookup included, as the handler does it)."""
    started = time.perf_counter()
    for code, location in mix:
        decide(catalogue.get(code), code, location, directory)
    return len(mix) / (time.perf_counter() - started)


def paths(directory, catalogue, mix) -> dict[str, int]:
    """How many decisions of `mix` took each rule path."""
    found: dict[str, int] = {}
    for code, location in mix:
        rule = decide(catalogue.get(code), code, location, directory).rule
        kind = next((k for k in ("override", "mapping", "outside", "unmapped", "unknown",
                                 "no-district", "coordination") if k in rule), "?")
        found[kind] = found.get(kind, 0) + 1
    return found


def opening_rate(directory, catalogue, mix) -> float:
    """Cases opened per second: decision + case document + validated `application_routed`."""
    now = utcnow()
    events = [load_event(make_event("application_received", f"app-{i}", {
        "tracking_code": "K7M4QX2D9", "security_digest": "d" * 64, "kind": "complaint",
        "category": code, "channel": "web", "location": location, "received_at": now}))
        for i, (code, location) in enumerate(mix)]
    started = time.perf_counter()
    for event in events:
        open_case(None, event, catalogue, directory, now)
    return len(events) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.routing_decisions")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    decisions, rounds = min(args.decisions, 2_000_000), min(args.rounds, 20)
    sample_hoods = sum(len(h) for h in scaled()[0].locations["Mersin"].values())
    sizes = {"sample": scaled(), "x4": scaled(4 * sample_hoods, 100),
             "1000/200": scaled(1000, 200)}
    same = queries(*sizes["sample"], decisions)
    own = queries(*sizes["1000/200"], decisions)
    runs: dict[str, list[float]] = {label: [] for label in [*sizes, "1000/200 own mix"]}
    for _ in range(rounds):
        for label, (directory, catalogue) in sizes.items():
            runs[label].append(rate(directory, catalogue, same))
        runs["1000/200 own mix"].append(rate(*sizes["1000/200"], own))

    print(f"routing decisions in process — Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {decisions:,} decisions × {rounds} interleaved rounds")
    print(f"{'organisation':>17} {'hoods':>6} {'cats':>5} {'overrides':>9} {'mappings':>8} "
          f"{'median/s':>10} {'best/s':>10} {'µs/decision':>12}")
    for label, values in runs.items():
        directory, catalogue = sizes[label.split()[0]]
        hoods = sum(len(h) for d in directory.locations.values() for h in d.values())
        mappings = sum(len(i.category_units) for i in directory.institutions.values())
        median = statistics.median(values)
        print(f"{label:>17} {hoods:>6} {len(catalogue):>5} {len(directory.overrides):>9} "
              f"{mappings:>8} {median:>10,.0f} {max(values):>10,.0f} {1e6 / median:>12.2f}")
    ratio = statistics.median(runs["1000/200"]) / statistics.median(runs["sample"])
    best = max(runs["1000/200"]) / max(runs["sample"])
    print(f"same queries, 1000/200 ÷ sample: {ratio:.2f} by median, {best:.2f} by best "
          "(1.00 = the same cost per decision whatever the size)")
    print("rule paths in the 1000/200 own mix:", paths(*sizes["1000/200"], own))
    opening = opening_rate(*sizes["1000/200"], own[:5_000])
    print(f"whole handler fold on 1000/200 (decision + case + validated event, no I/O): "
          f"{opening:,.0f}/s")
    worst = statistics.median(runs["1000/200 own mix"])
    print(f"target ≥ {TARGET:,}/s on 1000/200: {'met' if worst >= TARGET else 'MISSED'} "
          f"({worst:,.0f}/s)")


if __name__ == "__main__":
    main()
