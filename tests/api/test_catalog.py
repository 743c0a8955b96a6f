"""The catalog over HTTP: categories, amenities, listings, search, pagination, ETags.

Every test makes its own users, categories and listings with unique names, and filters
the shared catalog by a unique search word or host, so tests never depend on each other.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.fix_api import assert_problem, listing
from tests.fix_data import word
from tests.fix_users import User


@pytest.fixture
def category(client: TestClient, admin: User) -> dict[str, Any]:
    name = "Cat " + word()
    r = client.post("/api/categories/", json={"name": name}, headers=admin.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# --- categories ---------------------------------------------------------------------


def test_admin_creates_category_with_generated_slug(client: TestClient, admin: User) -> None:
    w = word()
    r = client.post("/api/categories/", json={"name": f"Beach Houses {w}!"}, headers=admin.auth)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["slug"] == f"beach-houses-{w}"
    assert {"id", "name", "slug", "description", "created_at", "updated_at"} <= body.keys()


def test_category_writes_need_admin(client: TestClient, host: User, guest: User, category: dict[str, Any]) -> None:
    assert_problem(client.post("/api/categories/", json={"name": word()}), 401)
    assert_problem(client.post("/api/categories/", json={"name": word()}, headers=guest.auth), 403)
    assert_problem(client.post("/api/categories/", json={"name": word()}, headers=host.auth), 403)
    path = f"/api/categories/{category['id']}/"
    assert_problem(client.patch(path, json={"name": word()}, headers=host.auth), 403)
    assert_problem(client.put(path, json={"name": word()}), 401)
    assert_problem(client.delete(path, headers=guest.auth), 403)


def test_category_get_by_id_or_slug_and_list(client: TestClient, category: dict[str, Any]) -> None:
    assert client.get(f"/api/categories/{category['id']}/").json() == category
    assert client.get(f"/api/categories/{category['slug']}/").json() == category
    assert_problem(client.get("/api/categories/no-such-category/"), 404)
    assert_problem(client.get(f"/api/categories/{uuid.uuid4()}/"), 404)
    r = client.get("/api/categories/", params={"page_size": 100})
    assert r.status_code == 200
    assert {"count", "next", "previous", "results"} <= r.json().keys()


def test_category_list_page_past_end_is_404(client: TestClient, category: dict[str, Any]) -> None:
    assert_problem(client.get("/api/categories/", params={"page": 100000}), 404)
    assert_problem(client.get("/api/categories/", params={"page": 0}), 400, "page")


def test_category_duplicates_are_409(client: TestClient, admin: User, category: dict[str, Any]) -> None:
    assert_problem(client.post("/api/categories/", json={"name": category["name"]}, headers=admin.auth), 409, "name")
    r = client.post("/api/categories/", json={"name": word(), "slug": category["slug"]}, headers=admin.auth)
    assert_problem(r, 409, "slug")
    other = client.post("/api/categories/", json={"name": word()}, headers=admin.auth).json()
    r = client.patch(f"/api/categories/{other['id']}/", json={"slug": category["slug"]}, headers=admin.auth)
    assert_problem(r, 409, "slug")


def test_category_validation(client: TestClient, admin: User) -> None:
    assert_problem(client.post("/api/categories/", json={}, headers=admin.auth), 400, "name")
    assert_problem(client.post("/api/categories/", json={"name": "  "}, headers=admin.auth), 400, "name")
    assert_problem(client.post("/api/categories/", json={"name": 5}, headers=admin.auth), 400, "name")
    assert_problem(
        client.post("/api/categories/", json={"name": word(), "slug": "Bad Slug"}, headers=admin.auth), 400, "slug"
    )
    assert_problem(client.post("/api/categories/", json={"name": "!!!"}, headers=admin.auth), 400, "slug")


def test_category_update_and_delete(client: TestClient, admin: User, category: dict[str, Any]) -> None:
    path = f"/api/categories/{category['slug']}/"
    r = client.patch(path, json={"description": "Sea views."}, headers=admin.auth)
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "Sea views." and r.json()["slug"] == category["slug"]
    new_name = "Renamed " + word()
    r = client.put(f"/api/categories/{category['id']}/", json={"name": new_name}, headers=admin.auth)
    assert r.status_code == 200 and r.json()["name"] == new_name
    assert_problem(client.put(f"/api/categories/{category['id']}/", json={}, headers=admin.auth), 400, "name")
    assert client.delete(path, headers=admin.auth).status_code == 204
    assert_problem(client.get(path), 404)
    assert_problem(client.delete(path, headers=admin.auth), 404)


def test_category_with_listings_cannot_be_deleted(
    client: TestClient, admin: User, host: User, category: dict[str, Any]
) -> None:
    listing(client, host, category, published=False)
    assert_problem(client.delete(f"/api/categories/{category['id']}/", headers=admin.auth), 409)


def test_amenities_are_listed(client: TestClient) -> None:
    r = client.get("/api/amenities/")
    assert r.status_code == 200
    slugs = {a["slug"] for a in r.json()["results"]}
    assert {"wifi", "pool", "pet_friendly", "parking", "kitchen"} <= slugs


# --- listings: create, read, change, delete -----------------------------------------


def test_host_creates_listing(client: TestClient, host: User, category: dict[str, Any]) -> None:
    p = listing(client, host, category, amenities=["wifi", "pool", "wifi"], currency="eur", price_per_night=99.5)
    assert p["host"] == {"id": host.id, "first_name": "Ada", "photo_url": None}
    assert p["price_per_night"] == "99.50" and p["currency"] == "EUR"
    assert p["amenities"] == ["pool", "wifi"]
    assert p["category"] == {"id": category["id"], "name": category["name"], "slug": category["slug"]}
    assert p["photos"] == [] and p["rating_avg"] == 0 and p["rating_count"] == 0
    assert p["cancellation_policy"] == "moderate" and p["published"] is True
    assert "email" not in p["host"] and "phone_number" not in p["host"]
    assert client.get(f"/api/products/{p['id']}/").json() == p


def test_create_listing_permissions(client: TestClient, guest: User, admin: User, category: dict[str, Any]) -> None:
    body = {
        "name": "x",
        "description": "",
        "location": "y",
        "price_per_night": "1",
        "max_guests": 1,
        "category": category["slug"],
    }
    assert_problem(client.post("/api/products/", json=body), 401)
    assert_problem(client.post("/api/products/", json=body, headers=guest.auth), 403)
    r = client.post("/api/products/", json=body, headers=admin.auth)
    assert r.status_code == 201 and r.json()["host"]["id"] == admin.id


def test_mass_assignment_is_ignored(client: TestClient, host: User, other_host: User, category: dict[str, Any]) -> None:
    forged = str(uuid.uuid4())
    p = listing(
        client,
        host,
        category,
        id=forged,
        host_id=other_host.id,
        host=other_host.id,
        rating_avg="5.00",
        rating_count=99,
        created_at="2000-01-01T00:00:00Z",
        updated_at="2000-01-01T00:00:00Z",
    )
    assert p["id"] != forged and p["host"]["id"] == host.id
    assert p["rating_avg"] == 0 and p["rating_count"] == 0 and not p["created_at"].startswith("2000")
    r = client.patch(
        f"/api/products/{p['id']}/", json={"host_id": other_host.id, "id": forged, "rating_avg": 5}, headers=host.auth
    )
    assert r.status_code == 200 and r.json()["host"]["id"] == host.id and r.json()["id"] == p["id"]
    assert r.json()["rating_avg"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"description": 3}, "description"),
        ({"location": " "}, "location"),
        ({"price_per_night": "cheap"}, "price_per_night"),
        ({"price_per_night": "0"}, "price_per_night"),
        ({"price_per_night": -5}, "price_per_night"),
        ({"price_per_night": "10.123"}, "price_per_night"),
        ({"price_per_night": True}, "price_per_night"),
        ({"max_guests": 0}, "max_guests"),
        ({"max_guests": 2.5}, "max_guests"),
        ({"max_guests": "many"}, "max_guests"),
        ({"amenities": "wifi"}, "amenities"),
        ({"cancellation_policy": "lenient"}, "cancellation_policy"),
        ({"published": "yes"}, "published"),
    ],
)
def test_listing_validation_names_the_field(
    client: TestClient, host: User, category: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    body = {
        "name": "Flat",
        "description": "d",
        "location": "Accra",
        "price_per_night": "10",
        "max_guests": 1,
        "category": category["id"],
        **change,
    }
    assert_problem(client.post("/api/products/", json=body, headers=host.auth), 400, field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"amenities": ["wifi", "jacuzzi-on-the-moon"]}, "amenities"),
        ({"category": "no-such-category"}, "category"),
        ({"category": str(uuid.uuid4())}, "category"),
    ],
)
def test_listing_naming_what_does_not_exist_is_404_naming_the_field(
    client: TestClient, host: User, category: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    body = {"name": "Flat", "description": "d", "location": "Accra", "price_per_night": "10", "max_guests": 1}
    body |= {"category": category["id"], **change}
    assert_problem(client.post("/api/products/", json=body, headers=host.auth), 404, field)
    body |= {"name": ""}  # a malformed field first: 400, the unknown one waits
    assert_problem(client.post("/api/products/", json=body, headers=host.auth), 400, "name")


@pytest.mark.parametrize("missing", ["name", "description", "location", "price_per_night", "max_guests", "category"])
def test_required_fields(client: TestClient, host: User, category: dict[str, Any], missing: str) -> None:
    body = {
        "name": "Flat",
        "description": "d",
        "location": "Accra",
        "price_per_night": "10",
        "max_guests": 1,
        "category": category["id"],
    }
    del body[missing]
    assert_problem(client.post("/api/products/", json=body, headers=host.auth), 400, missing)
    p = listing(client, host, category)
    assert_problem(client.put(f"/api/products/{p['id']}/", json=body, headers=host.auth), 400, missing)


def test_owner_and_admin_edit_others_cannot(
    client: TestClient, host: User, other_host: User, guest: User, admin: User, category: dict[str, Any]
) -> None:
    p = listing(client, host, category)
    path = f"/api/products/{p['id']}/"
    assert_problem(client.patch(path, json={"name": "Mine now"}), 401)
    assert_problem(client.patch(path, json={"name": "Mine now"}, headers=guest.auth), 403)
    assert_problem(client.patch(path, json={"name": "Mine now"}, headers=other_host.auth), 403)
    assert_problem(client.put(path, json={**p, "category": category["slug"]}, headers=other_host.auth), 403)
    assert_problem(client.delete(path, headers=other_host.auth), 403)
    assert_problem(client.delete(path, headers=guest.auth), 403)
    assert_problem(client.delete(path), 401)

    r = client.patch(path, json={"price_per_night": "150", "amenities": ["kitchen"]}, headers=host.auth)
    assert r.status_code == 200, r.text
    assert r.json()["price_per_night"] == "150.00" and r.json()["amenities"] == ["kitchen"]
    assert r.json()["updated_at"] > p["updated_at"]
    r = client.put(
        path,
        json={
            "name": "Full",
            "description": "New",
            "location": "Ikoyi, Lagos",
            "price_per_night": "80.25",
            "max_guests": 4,
            "category": category["id"],
        },
        headers=host.auth,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["max_guests"], r.json()["amenities"]) == ("Full", 4, ["kitchen"])
    r = client.patch(path, json={"published": False}, headers=admin.auth)
    assert r.status_code == 200 and r.json()["published"] is False
    assert client.delete(path, headers=admin.auth).status_code == 204
    assert_problem(client.get(path, headers=host.auth), 404)


def test_host_deletes_own_listing(client: TestClient, host: User, category: dict[str, Any]) -> None:
    p = listing(client, host, category)
    assert client.delete(f"/api/products/{p['id']}/", headers=host.auth).status_code == 204
    assert_problem(client.get(f"/api/products/{p['id']}/"), 404)


def test_unknown_and_malformed_ids_are_404(client: TestClient, host: User) -> None:
    for pid in (str(uuid.uuid4()), "not-a-uuid", "1"):
        assert_problem(client.get(f"/api/products/{pid}/"), 404)
        assert_problem(client.patch(f"/api/products/{pid}/", json={"name": "x"}, headers=host.auth), 404)
        assert_problem(client.delete(f"/api/products/{pid}/", headers=host.auth), 404)


def test_unpublished_listing_is_visible_to_its_host_and_admins_only(
    client: TestClient, host: User, other_host: User, guest: User, admin: User, category: dict[str, Any]
) -> None:
    w = word()
    p = listing(client, host, category, name=f"Hidden {w}", published=False)
    path = f"/api/products/{p['id']}/"
    assert_problem(client.get(path), 404)
    assert_problem(client.get(path, headers=guest.auth), 404)
    assert_problem(client.get(path, headers=other_host.auth), 404)
    assert_problem(client.patch(path, json={"name": "x"}, headers=other_host.auth), 404)
    assert client.get(path, headers=host.auth).status_code == 200
    assert client.get(path, headers=admin.auth).status_code == 200
    # The public list never shows it; the host sees it with host=me.
    assert client.get("/api/products/", params={"search": w}, headers=host.auth).json()["count"] == 0
    mine = client.get("/api/products/", params={"search": w, "host": "me"}, headers=host.auth).json()
    assert [r["id"] for r in mine["results"]] == [p["id"]]
    theirs = client.get("/api/products/", params={"search": w, "host": host.id}, headers=other_host.auth).json()
    assert theirs["count"] == 0
    assert_problem(client.get("/api/products/", params={"host": "me"}), 400, "host")
    assert_problem(client.get("/api/products/", params={"host": "nobody"}), 400, "host")


# --- search, filters, ordering, pagination ------------------------------------------


def test_seed_query_works_as_written(client: TestClient, admin: User, host: User) -> None:
    r = client.get("/api/categories/electronics/")
    if r.status_code == 404:
        r = client.post("/api/categories/", json={"name": "Electronics"}, headers=admin.auth)
        assert r.status_code in (201, 409), r.text
    electronics = client.get("/api/categories/electronics/").json()
    cheap = listing(client, host, electronics, name="laptop-friendly studio", price_per_night="50")
    dear = listing(client, host, electronics, name="Loft for laptop nomads", price_per_night="500")
    listing(client, host, electronics, name="Quiet cabin", description="No screens here.")
    r = client.get("/api/products/?category=electronics&ordering=-price&search=laptop")
    assert r.status_code == 200, r.text
    ids = [p["id"] for p in r.json()["results"] if p["host"]["id"] == host.id]
    assert ids == [dear["id"], cheap["id"]]


def test_filters(client: TestClient, host: User, other_host: User, category: dict[str, Any]) -> None:
    w = word()
    a = listing(
        client,
        host,
        category,
        name=f"A {w}",
        location="Lekki, Lagos, Nigeria",
        price_per_night="50",
        max_guests=2,
        amenities=["wifi", "pool"],
    )
    b = listing(
        client,
        host,
        category,
        name=f"B {w}",
        location="East Legon, Accra, Ghana",
        price_per_night="150",
        max_guests=6,
        amenities=["wifi"],
    )
    c = listing(
        client,
        other_host,
        category,
        name=f"C {w}",
        location="100%_Lagos",
        price_per_night="250",
        max_guests=4,
        amenities=["pool", "parking"],
    )

    def ids(**params: Any) -> set[str]:
        r = client.get("/api/products/", params={"search": w, **params})
        assert r.status_code == 200, r.text
        assert r.json()["count"] == len(r.json()["results"])
        return {p["id"] for p in r.json()["results"]}

    assert ids() == {a["id"], b["id"], c["id"]}
    assert ids(location="lagos") == {a["id"], c["id"]}
    assert ids(location="LEGON") == {b["id"]}
    assert ids(location="100%_") == {c["id"]}
    assert ids(location="%") == ids(location="_") == {c["id"]}
    assert ids(location="0%L") == set()  # % and _ match themselves, not any text
    assert ids(min_price="100") == {b["id"], c["id"]}
    assert ids(max_price="150.00") == {a["id"], b["id"]}
    assert ids(min_price="60", max_price="200") == {b["id"]}
    assert ids(guests="4") == {b["id"], c["id"]}
    assert ids(amenities="wifi") == {a["id"], b["id"]}
    assert ids(amenities="wifi,pool") == {a["id"]}
    assert ids(amenities="pool, parking") == {c["id"]}
    assert ids(host=host.id) == {a["id"], b["id"]}
    assert ids(category=category["id"]) == ids(category=category["slug"]) == {a["id"], b["id"], c["id"]}
    assert ids(location="lagos", guests="3", amenities="pool") == {c["id"]}


def test_full_text_search_ranks_and_uses_web_syntax(client: TestClient, host: User, category: dict[str, Any]) -> None:
    w = word()
    in_description = listing(client, host, category, name="Plain room", description=f"Near the {w} market.")
    in_name = listing(client, host, category, name=f"The {w} suite", description="Quiet.")
    r = client.get("/api/products/", params={"search": w}).json()
    assert [p["id"] for p in r["results"]] == [in_name["id"], in_description["id"]]
    r = client.get("/api/products/", params={"search": f"{w} -suite"}).json()
    assert [p["id"] for p in r["results"]] == [in_description["id"]]
    r = client.get("/api/products/", params={"search": f'"{w} suite"'}).json()
    assert [p["id"] for p in r["results"]] == [in_name["id"]]


@pytest.mark.parametrize(
    ("ordering", "key", "reverse"),
    [
        ("price", "price_per_night", False),
        ("-price", "price_per_night", True),
        ("name", "name", False),
        ("-name", "name", True),
        ("created_at", "created_at", False),
        ("-created_at", "created_at", True),
        ("rating", "rating_avg", False),
        ("-rating", "rating_avg", True),
    ],
)
def test_ordering(
    client: TestClient, host: User, category: dict[str, Any], ordering: str, key: str, reverse: bool
) -> None:
    w = word()
    for name, price in (("Bravo", "30"), ("Alpha", "200"), ("Charlie", "75.5")):
        listing(client, host, category, name=f"{name} {w}", price_per_night=price)
    results = client.get("/api/products/", params={"search": w, "ordering": ordering}).json()["results"]
    values = [float(p[key]) if key == "price_per_night" else p[key] for p in results]
    assert len(values) == 3
    assert values == sorted(values, reverse=reverse)


def test_pagination_links_start_with_public_url_whatever_the_host_header(
    client: TestClient, host: User, category: dict[str, Any]
) -> None:
    w = word()
    for i in range(3):
        listing(client, host, category, name=f"Stay {i} {w}")
    params = {"search": w, "page_size": "1"}

    first = client.get("/api/products/", params=params, headers={"Host": "evil.example"}).json()
    second = client.get(first["next"], headers={"Host": "evil.example:8443"}).json()

    for url in (first["next"], second["next"], second["previous"]):
        assert url.startswith("http://testserver/api/products/?"), url  # PUBLIC_URL, never the client's Host


def test_pagination_links_keep_filters(client: TestClient, host: User, category: dict[str, Any]) -> None:
    w = word()
    made = [listing(client, host, category, name=f"Stay {i} {w}", price_per_night=str(10 + i)) for i in range(5)]
    params = {"search": w, "ordering": "price", "page_size": "2"}
    first = client.get("/api/products/", params=params).json()
    assert first["count"] == 5 and first["previous"] is None
    assert [p["id"] for p in first["results"]] == [made[0]["id"], made[1]["id"]]
    nxt = urlsplit(first["next"])
    assert (nxt.scheme, nxt.netloc, nxt.path) == ("http", "testserver", "/api/products/")
    assert parse_qs(nxt.query) == {"search": [w], "ordering": ["price"], "page_size": ["2"], "page": ["2"]}
    second = client.get(first["next"]).json()
    assert [p["id"] for p in second["results"]] == [made[2]["id"], made[3]["id"]]
    assert parse_qs(urlsplit(second["previous"]).query)["page"] == ["1"]
    third = client.get(second["next"]).json()
    assert [p["id"] for p in third["results"]] == [made[4]["id"]] and third["next"] is None
    assert third["count"] == 5
    assert_problem(client.get("/api/products/", params={**params, "page": "4"}), 404)


@pytest.mark.parametrize("ordering", ["price", "-price", "", "-created_at", "name", "-rating"])
def test_cursor_pages_walk_the_same_rows_as_numbered_pages(
    client: TestClient, host: User, category: dict[str, Any], ordering: str
) -> None:
    w = word()
    for i in range(5):
        listing(client, host, category, name=f"Stay {w} {i % 3}", price_per_night=str(10 + i % 2))
    params = {"search": w, "ordering": ordering, "page_size": "2"}
    by_page = [
        p["id"]
        for n in (1, 2, 3)
        for p in client.get("/api/products/", params={**params, "page": str(n)}).json()["results"]
    ]

    first = client.get("/api/products/", params={**params, "cursor": ""}).json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()

    assert first["count"] == second["count"] == third["count"] == 5
    assert [p["id"] for r in (first, second, third) for p in r["results"]] == by_page
    assert parse_qs(urlsplit(first["next"]).query, keep_blank_values=True).keys() == {*params, "cursor"}
    assert first["previous"] is None and second["previous"] is None
    assert third["next"] is None


def test_a_cursor_page_is_stable_under_inserts(client: TestClient, host: User, category: dict[str, Any]) -> None:
    w = word()
    made = [listing(client, host, category, name=f"Stay {w}", price_per_night=str(10 + i)) for i in range(4)]
    params = {"search": w, "ordering": "price", "page_size": "2"}
    first = client.get("/api/products/", params={**params, "cursor": ""}).json()

    listing(client, host, category, name=f"Stay {w}", price_per_night="9")  # sorts first: shifts every numbered page
    second = client.get(first["next"]).json()

    assert [p["id"] for p in second["results"]] == [made[2]["id"], made[3]["id"]]
    assert second["count"] == 5 and second["next"] is None


@pytest.mark.parametrize("params", [{"cursor": "not-a-cursor"}, {"cursor": "", "page": "2"}])
def test_a_bad_cursor_is_400(client: TestClient, params: dict[str, str]) -> None:
    assert_problem(client.get("/api/products/", params=params), 400, "cursor")


def test_a_cursor_belongs_to_its_ordering(client: TestClient, host: User, category: dict[str, Any]) -> None:
    w = word()
    for _ in range(3):
        listing(client, host, category, name=f"Stay {w}")
    first = client.get(
        "/api/products/", params={"search": w, "ordering": "price", "page_size": "1", "cursor": ""}
    ).json()
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]

    r = client.get("/api/products/", params={"search": w, "ordering": "name", "cursor": cursor})

    assert_problem(r, 400, "cursor")


def test_page_size_is_capped_at_100(client: TestClient) -> None:
    r = client.get("/api/products/", params={"page_size": "500", "search": word()})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_price": "cheap"}, "min_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"min_price": "200", "max_price": "100"}, "max_price"),
        ({"ordering": "bogus"}, "ordering"),
        ({"ordering": "price;drop table app.products"}, "ordering"),
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"guests": "-1"}, "guests"),
        ({"guests": "two"}, "guests"),
        ({"amenities": "wifi,teleporter"}, "amenities"),
        ({"category": "no-such-category-anywhere"}, "category"),
        ({"check_in": "2030-01-05"}, "check_out"),
        ({"check_out": "2030-01-05"}, "check_in"),
        ({"check_in": "2030-02-30", "check_out": "2030-03-02"}, "check_in"),
        ({"check_in": "soon", "check_out": "2030-03-02"}, "check_in"),
        ({"check_in": "2030-01-05", "check_out": "2030-01-05"}, "check_out"),
    ],
)
def test_invalid_parameters_are_400(client: TestClient, params: dict[str, str], field: str) -> None:
    assert_problem(client.get("/api/products/", params=params), 400, field)


def test_search_with_only_stop_words_does_not_filter(client: TestClient) -> None:
    assert client.get("/api/products/", params={"search": "the", "page_size": "1"}).status_code == 200


def test_money_is_a_decimal_string(client: TestClient, host: User, category: dict[str, Any]) -> None:
    w = word()
    listing(client, host, category, name=f"Money {w}", price_per_night=1234567.8, currency="NGN")
    item = client.get("/api/products/", params={"search": w}).json()["results"][0]
    assert item["price_per_night"] == "1234567.80" and item["currency"] == "NGN"
    detail = client.get(f"/api/products/{item['id']}/")
    assert detail.json()["price_per_night"] == "1234567.80" and b'"1234567.80"' in detail.content


def test_list_items_are_the_detail_without_description_photos_and_address(
    client: TestClient, host: User, category: dict[str, Any]
) -> None:
    w = word()
    p = listing(client, host, category, name=f"Shape {w}", amenities=["tv"])
    item = client.get("/api/products/", params={"search": w}).json()["results"][0]
    assert set(p) - set(item) == {"description", "photos", "address"}
    assert set(item) - set(p) == {"photo"}
    assert all(item[k] == p[k] for k in item if k != "photo")


# --- ETags ---------------------------------------------------------------------------


def test_etag_and_304(client: TestClient, host: User, category: dict[str, Any]) -> None:
    p = listing(client, host, category)
    for path in (
        f"/api/products/{p['id']}/",
        "/api/products/?search=flat",
        "/api/categories/",
        "/api/amenities/",
        f"/api/categories/{category['slug']}/",
    ):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["etag"], path
        again = client.get(path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
    tag = client.get(f"/api/products/{p['id']}/").headers["etag"]
    client.patch(f"/api/products/{p['id']}/", json={"amenities": ["gym"]}, headers=host.auth)
    assert client.get(f"/api/products/{p['id']}/", headers={"If-None-Match": tag}).status_code == 200


def test_signed_in_catalog_reads_are_not_shared_by_caches(
    client: TestClient, host: User, category: dict[str, Any]
) -> None:
    p = listing(client, host, category)
    public = client.get(f"/api/products/{p['id']}/")
    assert public.headers["cache-control"].startswith("public") and "Authorization" in public.headers["vary"]
    own = client.get(f"/api/products/{p['id']}/", headers=host.auth)
    assert own.headers["cache-control"].startswith("private")


# --- free dates ---------------------------------------------------------------------


def test_free_dates_filter(client: TestClient, owner: Any, host: User, category: dict[str, Any]) -> None:
    w = word()
    busy = listing(client, host, category, name=f"Busy {w}")
    free = listing(client, host, category, name=f"Free {w}")
    owner.execute(
        "insert into app.calendar_entries (product_id, stay) values (%s, daterange('2031-01-10', '2031-01-15'))",
        (busy["id"],),
    )

    def ids(check_in: str, check_out: str) -> set[str]:
        r = client.get("/api/products/", params={"search": w, "check_in": check_in, "check_out": check_out})
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["results"]}

    assert ids("2031-01-12", "2031-01-13") == {free["id"]}
    assert ids("2031-01-01", "2031-02-01") == {free["id"]}
    assert ids("2031-01-14", "2031-01-16") == {free["id"]}
    # Half-open stays: leaving on the 10th, or arriving on the 15th, does not overlap.
    assert ids("2031-01-05", "2031-01-10") == {busy["id"], free["id"]}
    assert ids("2031-01-15", "2031-01-20") == {busy["id"], free["id"]}


def test_price_per_night_is_capped_so_a_year_still_fits_a_total(
    client: TestClient, host: User, category: dict[str, Any]
) -> None:
    body = {
        "name": "Palace " + word(),
        "description": "x",
        "location": "Abuja",
        "max_guests": 2,
        "category": category["slug"],
    }
    r = client.post("/api/products/", json={**body, "price_per_night": "9999999999.99"}, headers=host.auth)
    assert r.status_code == 400 and "price_per_night" in r.json()["errors"]
    assert (
        client.post("/api/products/", json={**body, "price_per_night": "10000000"}, headers=host.auth).status_code
        == 201
    )
