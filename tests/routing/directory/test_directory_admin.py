"""The directory as data: seeded from the files once, changed by validated admin changes, and
rebuilt in memory — for this process at once, for another replica at its next version check."""

import eventlet
import pytest

from services.routing import admin
from services.routing.domain import decide
from services.routing.organisation import OrganisationCache


def where(district, neighbourhood=None):
    return {"province": "Mersin", "district": district, "neighbourhood": neighbourhood}


def route(cache, category, district, neighbourhood=None):
    org = cache.current()
    return decide(org.catalogue.get(category), category, where(district, neighbourhood),
                  org.directory)


def test_the_directory_is_seeded_from_the_files_once(store, cache, config):
    org = cache.current()
    assert org.version == 1
    assert "mezitli_bld.works" in org.directory.units and "road_damage" in org.catalogue
    assert store.db["directory_units"].find_one({"_id": "mezitli_bld.works"})["institution"] \
        == "mezitli_bld"
    # a second process start finds it there and leaves it alone
    other = OrganisationCache(store, config)
    assert other.start().version == 1


def test_a_mapping_change_is_what_the_next_decision_uses_here_and_in_another_replica(
    store, cache, config
):
    replica = OrganisationCache(store, config)  # another process on the same database
    replica.start()
    assert route(replica, "road_damage", "Mezitli").unit == "mezitli_bld.works"
    org = cache.change(lambda r: admin.set_mapping(r, "mezitli_bld", "road_damage",
                                                   "mezitli_bld.parks"))
    assert org.version == 2
    assert route(cache, "road_damage", "Mezitli").unit == "mezitli_bld.parks"
    assert route(replica, "road_damage", "Mezitli").unit == "mezitli_bld.parks"  # re-read
    # the other municipalities keep their own mappings
    assert route(cache, "road_damage", "Yenişehir").unit == "yenisehir_bld.works"


def test_a_neighbourhood_override_added_and_removed(cache):
    rule = {"district": "Toroslar", "neighbourhood": "Arslanköy", "category": "road_damage",
            "unit": "toroslar_bld.parks"}
    cache.change(lambda r: admin.set_override(r, "toroslar_bld", rule))
    decision = route(cache, "road_damage", "Toroslar", "ARSLANKÖY")
    assert decision.unit == "toroslar_bld.parks" and "override" in decision.rule
    assert route(cache, "road_damage", "Toroslar", "Akbelen").unit == "toroslar_bld.works"
    cache.change(lambda r: admin.delete_override(r, "toroslar_bld", rule))
    assert route(cache, "road_damage", "Toroslar", "Arslanköy").unit == "toroslar_bld.works"


def test_a_new_institution_with_units_staff_and_mappings_takes_its_district(cache):
    assert route(cache, "road_damage", "Akdeniz").unit == "mersin_bb.coordination"
    people = [{"code": f"akd-000{i}", "name": f"Kişi {i}", "role": role,
               "institution": "akdeniz_bld", "unit": None, "phone": None, "email": None}
              for i, role in enumerate(("expert", "expert", "supervisor", "director"), 1)]

    def build(records):
        records = admin.create(records, "institutions", {
            "code": "akdeniz_bld", "type": "district", "name_tr": "Akdeniz Belediyesi",
            "name_en": "Akdeniz Municipality", "parent": None,
            "area": {"province": "Mersin", "district": "Akdeniz"}, "contact": {},
            "head": None, "deputies": [], "coordination_unit": None, "category_units": {},
            "neighbourhood_overrides": []})
        for person in people:
            records = admin.create(records, "staff", person)
        records = admin.create(records, "units", {
            "code": "akdeniz_bld.works", "institution": "akdeniz_bld",
            "name_tr": "Fen İşleri Müdürlüğü", "name_en": "Technical Works",
            "experts": {"primary": "akd-0001", "backup": "akd-0002"},
            "supervisor": "akd-0003", "director": "akd-0004"})
        return admin.set_mapping(records, "akdeniz_bld", "road_damage", "akdeniz_bld.works")

    cache.change(build)
    decision = route(cache, "road_damage", "Akdeniz")
    assert (decision.institution, decision.unit) == ("akdeniz_bld", "akdeniz_bld.works")
    assert route(cache, "cleaning", "Akdeniz").unit == "mersin_bb.coordination"  # unmapped


@pytest.mark.parametrize(("make", "status", "field"), [
    (lambda r: admin.set_mapping(r, "mezitli_bld", "road_damage", "yenisehir_bld.works"),
     422, "category_units.road_damage"),  # another municipality's unit
    (lambda r: admin.set_mapping(r, "mezitli_bld", "no_such_category", "mezitli_bld.works"),
     422, "category_units.no_such_category"),
    (lambda r: admin.set_mapping(r, "nowhere_bld", "road_damage", "mezitli_bld.works"),
     404, None),
    (lambda r: admin.update(r, "units", "mezitli_bld.works",
                            {"experts": {"primary": "zzz-0001", "backup": "mez-0009"}}),
     422, "experts.primary"),
    (lambda r: admin.update(r, "institutions", "meski", {"parent": "meski"}), 422, "parent"),
    (lambda r: admin.create(r, "units", {"code": "mezitli_bld.works",
                                         "institution": "mezitli_bld", "name_tr": "x",
                                         "name_en": "x", "experts": {}}), 409, "code"),
    (lambda r: admin.delete(r, "units", "mezitli_bld.works"), 409, "references"),
    (lambda r: admin.delete(r, "staff", "mez-0008"), 409, "references"),
    (lambda r: admin.delete(r, "categories", "road_damage"), 409, "references"),
    (lambda r: admin.update_category(r, "water_leak", {"institution": "mersin_dogalgaz"}),
     422, "institution"),  # a named category needs a named institution
    (lambda r: admin.update_category(r, "noise", {"read_hours": 48}), 422, "resolve_hours"),
])
def test_a_change_that_would_break_the_directory_is_refused_and_nothing_is_stored(
    cache, make, status, field
):
    before = cache.records()
    with pytest.raises(admin.ChangeRefused) as refused:
        cache.change(make)
    assert refused.value.status == status
    if field:
        assert field in refused.value.errors["json"], refused.value.errors
    after = cache.records()
    assert (after.flat, after.categories, after.version) == (
        before.flat, before.categories, before.version)


def test_a_category_is_added_and_changed_through_the_catalogue(cache):
    cache.change(lambda r: admin.create(r, "categories", admin.category_record({
        "code": "graffiti", "name_tr": "Duvar yazısı", "name_en": "Graffiti",
        "kinds": ["complaint"], "tier": "district", "institution": None, "read_hours": 24,
        "resolve_hours": 96, "priority": "low", "reopen_days": 10, "first_contact": False,
        "muhtar": False})))
    cache.change(lambda r: admin.set_mapping(r, "mezitli_bld", "graffiti",
                                             "mezitli_bld.cleaning"))
    cache.change(lambda r: admin.update_category(r, "graffiti", {"resolve_hours": 48}))
    org = cache.current()
    assert (org.catalogue["graffiti"].read_hours, org.catalogue["graffiti"].resolve_hours) == (
        24, 48)
    assert route(cache, "graffiti", "Mezitli").unit == "mezitli_bld.cleaning"
    assert route(cache, "graffiti", "Yenişehir").unit == "yenisehir_bld.coordination"


def test_an_explicit_reload_puts_the_files_back(cache):
    cache.change(lambda r: admin.set_mapping(r, "mezitli_bld", "road_damage",
                                             "mezitli_bld.parks"))
    org = cache.reload_files()
    assert org.version == 3
    assert route(cache, "road_damage", "Mezitli").unit == "mezitli_bld.works"


NEW_UNIT = {"code": "mezitli_bld.lighting", "institution": "mezitli_bld", "name_tr": "Aydınlatma",
            "name_en": "Lighting", "experts": {"primary": "mez-0008", "backup": "mez-0009"},
            "supervisor": "mez-0010", "director": "mez-0011"}


@pytest.mark.parametrize("kind", ["units", "categories"])
def test_two_replicas_creating_the_same_code_at_once_store_it_once_and_refuse_the_other(
    store, config, kind
):
    record = NEW_UNIT if kind == "units" else admin.category_record({
        "code": "graffiti", "name_tr": "Duvar yazısı", "name_en": "Graffiti",
        "kinds": ["complaint"], "tier": "district", "read_hours": 24, "resolve_hours": 96})
    replicas = [OrganisationCache(store, config) for _ in range(4)]  # four processes
    for replica in replicas:
        replica.start()

    def create(replica):
        try:
            replica.change(lambda r: admin.create(r, kind, record))
        except admin.ChangeRefused as refused:
            return refused.status
        return 201

    pool = eventlet.GreenPool(len(replicas))
    assert sorted(pool.imap(create, replicas)) == [201, 409, 409, 409]
    assert store.db[f"directory_{kind}"].count_documents({"_id": record["code"]}) == 1
    assert record["code"] in (replicas[0].current().directory.units if kind == "units"
                              else replicas[0].current().catalogue)


def test_directory_versions_bumped_at_once_are_all_distinct(store, cache):
    before = cache.current().version
    pool = eventlet.GreenPool(8)
    versions = list(pool.imap(lambda _: store.bump_version(), range(8)))
    assert sorted(versions) == list(range(before + 1, before + 9))  # none lost, none shared
    assert store.directory_version() == before + 8
