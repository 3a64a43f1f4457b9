"""Admin catalogue changes reach intake and tracking: each changed category carries its
`category_saved` in the write that stores it; the seed from the files carries none."""


from services.common.events import load_event
from services.common.outbox import OUTBOX, OUTBOX_AT
from services.routing import admin
from services.routing.store import DIRECTORY_COLLECTIONS, RoutingStore
from tests.support import GRAFFITI


def categories(store: RoutingStore):
    return store.db[DIRECTORY_COLLECTIONS["categories"]]


def outbox(store: RoutingStore, code: str) -> list[dict]:
    """The events waiting in a category's document, as a consumer would load them."""
    doc = categories(store).find_one({"_id": code}) or {}
    return [load_event(envelope) for envelope in doc.get(OUTBOX) or []]


def test_the_seed_from_the_files_emits_nothing(cache, store):
    assert categories(store).count_documents({OUTBOX_AT: {"$exists": True}}) == 0


def test_a_created_category_carries_its_definition_in_the_same_document(cache, store):
    cache.change(lambda r: admin.create(r, "categories", admin.category_record(GRAFFITI)))
    [event] = outbox(store, "graffiti")
    assert event["type"] == "category_saved"
    assert event["application_id"] == "category:graffiti"
    assert event["data"] == dict(cache.current().catalogue["graffiti"].to_dict(), removed=False)
    # the bookkeeping stays out of the directory the admin API works on
    stored = next(c for c in cache.records().categories if c["code"] == "graffiti")
    assert not {OUTBOX, OUTBOX_AT, "_v"} & set(stored)


def test_a_change_is_added_to_what_still_waits_and_an_unchanged_save_emits_nothing(cache, store):
    cache.change(lambda r: admin.create(r, "categories", admin.category_record(GRAFFITI)))
    cache.change(lambda r: admin.update_category(r, "graffiti", {"resolve_hours": 48}))
    cache.change(lambda r: admin.update_category(r, "graffiti", {"resolve_hours": 48}))
    first, second = outbox(store, "graffiti")
    assert (first["data"]["resolve_hours"], second["data"]["resolve_hours"]) == (96, 48)
    # a mapping change touches the institution only
    cache.change(lambda r: admin.set_mapping(r, "mezitli_bld", "graffiti",
                                             "mezitli_bld.cleaning"))
    assert len(outbox(store, "graffiti")) == 2


def test_a_deleted_category_leaves_a_tombstone_carrying_its_removal(cache, store):
    cache.change(lambda r: admin.create(r, "categories", admin.category_record(GRAFFITI)))
    cache.change(lambda r: admin.delete(r, "categories", "graffiti"))
    assert "graffiti" not in cache.current().catalogue
    assert all(c["code"] != "graffiti" for c in cache.records().categories)
    removal = outbox(store, "graffiti")[-1]
    assert removal["data"]["removed"] is True
    assert removal["data"]["name_tr"] == GRAFFITI["name_tr"]
    # created again: the tombstone becomes the category, its waiting events kept
    cache.change(lambda r: admin.create(r, "categories", admin.category_record(GRAFFITI)))
    assert "graffiti" in cache.current().catalogue
    assert [e["data"]["removed"] for e in outbox(store, "graffiti")] == [False, True, False]


def test_a_reload_emits_for_the_categories_it_changes_or_removes_only(cache, store):
    cache.change(lambda r: admin.create(r, "categories", admin.category_record(GRAFFITI)))
    cache.change(lambda r: admin.update_category(r, "road_damage", {"reopen_days": 3}))
    categories(store).update_many({}, {"$set": {OUTBOX: []}, "$unset": {OUTBOX_AT: ""}})
    cache.reload_files()
    assert "graffiti" not in cache.current().catalogue
    assert outbox(store, "graffiti")[-1]["data"]["removed"] is True
    [back] = outbox(store, "road_damage")
    assert back["data"]["reopen_days"] == 15  # the file's again
    assert categories(store).count_documents({OUTBOX_AT: {"$exists": True}}) == 2


def test_the_admin_api_emits_on_create_change_and_delete(config, parts, store):
    from services.routing.web import create_app
    from tests.support import bearer

    http = create_app(parts).test_client()
    admin_token = bearer(config, "admin")
    assert http.post("/api/v1/categories", json=GRAFFITI,
                     headers=admin_token).status_code == 201
    assert http.patch("/api/v1/categories/graffiti", json={"name_en": "Wall writing"},
                      headers=admin_token).status_code == 200
    assert http.delete("/api/v1/categories/graffiti", headers=admin_token).status_code == 204
    events = outbox(store, "graffiti")
    assert [(e["data"]["name_en"], e["data"]["removed"]) for e in events] == [
        ("Graffiti", False), ("Wall writing", False), ("Wall writing", True)]
