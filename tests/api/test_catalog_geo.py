"""Search like a marketplace (issue 26): where a listing is, the map, facets, typo tolerance.

Every test makes its own host and listings and narrows the shared catalog to them (host=<id>,
or a unique word), so the tests never depend on each other. Distances are checked with the
haversine formula on PostGIS's sphere (6,371,008.8 m), independently of the database.
"""

from __future__ import annotations

import math
import random
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.fix_api import assert_problem, listing
from tests.fix_data import day, word
from tests.fix_users import User

EARTH_M = 6371008.8  # PostGIS's mean radius: its sphere distances


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lng1), (lat2, lng2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def moved(point: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    lat, lng = point
    return lat + north_m / 111_195, lng + east_m / (111_195 * math.cos(math.radians(lat)))


@pytest.fixture
def category(client: TestClient, admin: User) -> dict[str, Any]:
    r = client.post("/api/categories/", json={"name": "Geo " + word()}, headers=admin.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def somewhere() -> tuple[float, float]:
    """A place of this test's own (most of the planet is nobody else's)."""
    return (round(random.uniform(-50, 50), 4), round(random.uniform(-170, 170), 4))


def at(client: TestClient, host: User, category: dict[str, Any], point: tuple[float, float], **fields: Any) -> Any:
    return listing(client, host, category, latitude=point[0], longitude=point[1], **fields)


def search(client: TestClient, **params: Any) -> Any:
    r = client.get("/api/products/", params=params)
    assert r.status_code == 200, r.text
    return r.json()


# --- where a listing is ----------------------------------------------------------------


def test_the_exact_place_is_the_hosts_and_the_public_sees_a_pin_a_few_hundred_metres_away(
    client: TestClient, host: User, guest: User, admin: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    made = at(client, host, category, somewhere, address="12 Admiralty Way")
    path = f"/api/products/{made['id']}/"

    public = client.get(path).json()
    as_guest = client.get(path, headers=guest.auth).json()
    as_admin = client.get(path, headers=admin.auth).json()
    pin = (public["latitude"], public["longitude"])

    assert (made["latitude"], made["longitude"], made["address"], made["location_exact"]) == (
        *somewhere,
        "12 Admiralty Way",
        True,
    )
    assert (as_admin["latitude"], as_admin["longitude"], as_admin["address"]) == (*somewhere, "12 Admiralty Way")
    assert public["location_exact"] is False and public["address"] is None
    assert 149 <= metres(pin, somewhere) <= 401, metres(pin, somewhere)
    assert (as_guest["latitude"], as_guest["longitude"], as_guest["address"]) == (*pin, None)
    # The pin never moves: not on another read, not when the host changes something else.
    client.patch(path, json={"name": "Renamed " + word(), "address": "14 Admiralty Way"}, headers=host.auth)
    again = client.get(path).json()
    assert (again["latitude"], again["longitude"]) == pin
    item = search(client, host=host.id)["results"][0]
    assert (item["latitude"], item["longitude"], item["location_exact"]) == (*pin, False)


def test_a_guest_with_a_confirmed_stay_sees_the_exact_place(
    client: TestClient,
    owner: psycopg.Connection[Any],
    host: User,
    guest: User,
    category: dict[str, Any],
    somewhere: tuple[float, float],
) -> None:
    made = at(client, host, category, somewhere, address="7 Mpaka Road")
    path = f"/api/products/{made['id']}/"
    assert client.get(path, headers=guest.auth).json()["address"] is None

    owner.execute(
        """insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, status,
                                     price_per_night, total_price, currency, cancellation_policy, confirmed_at)
           values (%s, %s, %s, %s, %s, 1, 'confirmed', 120, 240, 'USD', 'moderate', now())""",
        (made["id"], guest.id, host.id, day(30), day(32)),
    )
    shown = client.get(path, headers=guest.auth).json()

    assert (shown["latitude"], shown["longitude"], shown["address"], shown["location_exact"]) == (
        *somewhere,
        "7 Mpaka Road",
        True,
    )
    assert client.get(path).json()["address"] is None  # still nobody else's


def test_moving_and_removing_the_point(
    client: TestClient, host: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    made = at(client, host, category, somewhere)
    path = f"/api/products/{made['id']}/"
    before = client.get(path).json()
    there = moved(somewhere, 5000, 0)

    client.patch(path, json={"latitude": there[0], "longitude": there[1]}, headers=host.auth)
    after = client.get(path).json()
    cleared = client.patch(path, json={"latitude": None, "longitude": None}, headers=host.auth).json()

    # The same offset, 5 km further north: the pin moved with the place, by the same vector.
    assert after["latitude"] - before["latitude"] == pytest.approx(there[0] - somewhere[0], abs=1e-4)
    assert (cleared["latitude"], cleared["longitude"], cleared["location_exact"]) == (None, None, False)
    assert client.get(path).json()["latitude"] is None
    assert search(client, host=host.id, near=f"{somewhere[0]},{somewhere[1]}")["count"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": 91, "longitude": 0}, "latitude"),
        ({"latitude": -90.5, "longitude": 0}, "latitude"),
        ({"latitude": 0, "longitude": 181}, "longitude"),
        ({"latitude": 0, "longitude": -180.01}, "longitude"),
        ({"latitude": "6.45", "longitude": 3.4}, "latitude"),
        ({"latitude": 6.45}, "longitude"),
        ({"longitude": 3.4}, "latitude"),
        ({"latitude": None, "longitude": 3.4}, "latitude"),
        ({"latitude": 6.45, "longitude": None}, "longitude"),
        ({"address": ""}, "address"),
        ({"address": "x" * 301}, "address"),
    ],
)
def test_a_bad_place_is_400_naming_the_field(
    client: TestClient, host: User, category: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    body = {"name": "Flat", "description": "d", "location": "Accra", "price_per_night": "10", "max_guests": 1}
    r = client.post("/api/products/", json={**body, "category": category["id"], **change}, headers=host.auth)
    assert_problem(r, 400, field)


# --- the map -----------------------------------------------------------------------------


def test_near_with_a_radius_nearest_first_with_distances(
    client: TestClient, host: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    places = [moved(somewhere, north, 0) for north in (1000, 3000, 6000, 12000)]
    made = [at(client, host, category, p) for p in places]
    near = f"{somewhere[0]},{somewhere[1]}"

    within = search(client, host=host.id, near=near, radius_km="8", ordering="distance")
    everything = search(client, host=host.id, near=near, ordering="distance")

    assert [p["id"] for p in within["results"]] == [m["id"] for m in made[:3]]
    assert [p["id"] for p in everything["results"]] == [m["id"] for m in made]
    for item in everything["results"]:  # from near to the public point, in km
        expected = metres(somewhere, (item["latitude"], item["longitude"])) / 1000
        assert item["distance_km"] == pytest.approx(expected, abs=0.002)
    assert "distance_km" not in search(client, host=host.id)["results"][0]


def test_distance_ties_break_by_id_and_cursor_pages_walk_the_same_rows(
    client: TestClient, host: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    for north in (0, 0, 0, 2000, 2000):
        at(client, host, category, moved(somewhere, north, 0))
    params = {"host": host.id, "near": f"{somewhere[0]},{somewhere[1]}", "ordering": "distance", "page_size": "2"}
    by_page = [p for n in (1, 2, 3) for p in search(client, **params, page=str(n))["results"]]

    first = search(client, **params, cursor="")
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()

    keys = [(p["distance_km"], p["id"]) for p in by_page]
    assert len(by_page) == 5 and keys == sorted(keys)
    assert [p["id"] for page in (first, second, third) for p in page["results"]] == [p["id"] for p in by_page]
    assert third["next"] is None


def test_a_viewport_and_one_across_the_antimeridian(client: TestClient, host: User, category: dict[str, Any]) -> None:
    lat = round(random.uniform(-40, 40), 3)
    east = at(client, host, category, (lat, 179.5))
    west = at(client, host, category, (lat, -179.5))
    middle = at(client, host, category, (lat, 0.5))

    def ids(west: float, east: float, south: float, north: float) -> set[str]:
        bbox = f"{west},{lat + south:.3f},{east},{lat + north:.3f}"
        return {p["id"] for p in search(client, host=host.id, bbox=bbox)["results"]}

    assert ids(179, -179, -1, 1) == {east["id"], west["id"]}  # west > east: across it
    assert ids(0, 1, -1, 1) == {middle["id"]}
    assert ids(-180, 180, -1, 1) == {east["id"], west["id"], middle["id"]}
    assert ids(0, 1, 2, 3) == set()
    # As a browser's map library writes numbers: 17 decimals are fine.
    assert search(client, host=host.id, bbox=f"0.30000000000000004,{lat - 1:.3f},1,{lat + 1:.3f}")["count"] == 1


def test_the_map_combines_with_every_filter(
    client: TestClient, host: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    w = word()
    match = at(client, host, category, somewhere, name=f"Match {w}", price_per_night="80", amenities=["wifi"])
    at(client, host, category, somewhere, name=f"Dear {w}", price_per_night="900", amenities=["wifi"])
    at(client, host, category, somewhere, name=f"Bare {w}", price_per_night="80")
    at(client, host, category, moved(somewhere, 50_000, 0), name=f"Far {w}", price_per_night="80", amenities=["wifi"])
    lat, lng = somewhere
    params = {"search": w, "category": category["slug"], "max_price": "100", "amenities": "wifi", "guests": "1"}
    params |= {"check_in": day(40), "check_out": day(42), "location": "lagos"}

    near = search(client, **params, near=f"{lat},{lng}", radius_km="5", ordering="distance")
    box = search(client, **params, bbox=f"{lng - 0.1},{lat - 0.1},{lng + 0.1},{lat + 0.1}", ordering="price")

    assert [p["id"] for p in near["results"]] == [p["id"] for p in box["results"]] == [match["id"]]


def test_a_radius_around_the_exact_point_finds_only_the_pin_so_it_tells_nothing_more(
    client: TestClient, host: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    made = at(client, host, category, somewhere)
    pin = client.get(f"/api/products/{made['id']}/").json()

    around_exact = search(client, host=host.id, near=f"{somewhere[0]},{somewhere[1]}", radius_km="0.1")
    around_pin = search(client, host=host.id, near=f"{pin['latitude']},{pin['longitude']}", radius_km="0.1")

    assert around_exact["count"] == 0 and around_pin["count"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"near": "91,0"}, "near"),
        ({"near": "-91,0"}, "near"),
        ({"near": "0,181"}, "near"),
        ({"near": "0,-180.5"}, "near"),
        ({"near": "6.45"}, "near"),
        ({"near": "6.45, 3.40"}, "near"),
        ({"near": "lat,lng"}, "near"),
        ({"near": "6.45,3.40", "radius_km": "0"}, "radius_km"),
        ({"near": "6.45,3.40", "radius_km": "20000"}, "radius_km"),
        ({"near": "6.45,3.40", "radius_km": "500.5"}, "radius_km"),
        ({"near": "6.45,3.40", "radius_km": "-5"}, "radius_km"),
        ({"radius_km": "5"}, "radius_km"),
        ({"bbox": "3.3,6.6,3.5,6.4"}, "bbox"),  # south above north: the corners swapped
        ({"bbox": "3.3,6.4,3.3,6.6"}, "bbox"),  # no area
        ({"bbox": "181,6.4,3.5,6.6"}, "bbox"),
        ({"bbox": "3.3,-91,3.5,6.6"}, "bbox"),
        ({"bbox": "3.3,6.4,3.5"}, "bbox"),
        ({"ordering": "distance"}, "ordering"),
        ({"ordering": "distance", "bbox": "3.3,6.4,3.5,6.6"}, "ordering"),
        ({"ordering": "-distance", "near": "6.45,3.40"}, "ordering"),
    ],
)
def test_a_bad_map_parameter_is_400_naming_it(client: TestClient, params: dict[str, str], field: str) -> None:
    assert_problem(client.get("/api/products/", params=params), 400, field)
    if "ordering" not in params:  # the facets have no ordering
        assert_problem(client.get("/api/products/facets/", params=params), 400, field)


# --- facets ------------------------------------------------------------------------------


def test_facets_count_what_the_list_finds(
    client: TestClient, host: User, category: dict[str, Any], somewhere: tuple[float, float]
) -> None:
    w = word()
    at(client, host, category, somewhere, name=f"A {w}", price_per_night="20", max_guests=2, amenities=["wifi", "pool"])
    at(client, host, category, somewhere, name=f"B {w}", price_per_night="120", max_guests=6, amenities=["wifi"])
    at(client, host, category, moved(somewhere, 30_000, 0), name=f"C {w}", price_per_night="1500", max_guests=4)

    everything = client.get("/api/products/facets/", params={"search": w})
    nearby = client.get(
        "/api/products/facets/", params={"search": w, "near": f"{somewhere[0]},{somewhere[1]}", "radius_km": "10"}
    ).json()
    facets = everything.json()

    assert everything.status_code == 200 and everything.headers["etag"]
    assert facets["count"] == search(client, search=w)["count"] == 3 and facets["fuzzy"] is False
    assert facets["categories"] == [{**{k: category[k] for k in ("id", "slug", "name")}, "count": 3}]
    counts = {a["slug"]: a["count"] for a in facets["amenities"]}
    assert counts["wifi"] == 2 and counts["pool"] == 1 and counts["gym"] == 0 and len(counts) >= 15
    buckets = {(b["min"], b["max"]): b["count"] for b in facets["price"]["buckets"]}
    assert buckets[("0.00", "25.00")] == 1 and buckets[("100.00", "150.00")] == 1 and buckets[("1000.00", None)] == 1
    assert sum(buckets.values()) == 3 and (facets["price"]["min"], facets["price"]["max"]) == ("20.00", "1500.00")
    guests = {g["min_guests"]: g["count"] for g in facets["guests"]}
    assert (guests[1], guests[2], guests[4], guests[5], guests[8]) == (3, 3, 2, 1, 0)
    assert nearby["count"] == 2 and {a["slug"]: a["count"] for a in nearby["amenities"]}["wifi"] == 2
    again = client.get(
        "/api/products/facets/", params={"search": w}, headers={"If-None-Match": everything.headers["etag"]}
    )
    assert again.status_code == 304


def test_facets_follow_a_listings_amenities_as_they_change(
    client: TestClient, owner: psycopg.Connection[Any], host: User, category: dict[str, Any]
) -> None:
    w = word()
    made = listing(client, host, category, name=f"Kit {w}", amenities=["wifi", "pool"])

    def amenities() -> dict[str, int]:
        facets = client.get("/api/products/facets/", params={"search": w}).json()
        return {a["slug"]: a["count"] for a in facets["amenities"] if a["count"]}

    before = amenities()
    client.patch(f"/api/products/{made['id']}/", json={"amenities": ["gym", "wifi"]}, headers=host.auth)
    after = amenities()
    owner.execute("delete from app.product_amenities where product_id = %s and amenity = 'gym'", (made["id"],))

    assert before == {"pool": 1, "wifi": 1} and after == {"gym": 1, "wifi": 1} and amenities() == {"wifi": 1}


def test_facets_of_nothing(client: TestClient) -> None:
    facets = client.get("/api/products/facets/", params={"location": "nowhere-" + uuid.uuid4().hex}).json()
    assert facets["count"] == 0 and facets["categories"] == [] and facets["price"]["min"] is None
    assert all(b["count"] == 0 for b in facets["price"]["buckets"]) and facets["guests"][0] == {
        "min_guests": 1,
        "count": 0,
    }


# --- typo tolerance ----------------------------------------------------------------------


def test_a_typo_finds_lisbon_by_similarity_and_says_so(
    client: TestClient, host: User, category: dict[str, Any]
) -> None:
    place = f"Alfama, Lisbon {word()}, Portugal"
    made = [listing(client, host, category, location=place, name=f"Flat {i}") for i in range(3)]

    exact = search(client, search="Lisbon", host=host.id)
    typo = search(client, search="Lisbn", host=host.id, page_size="2")
    second = client.get(typo["next"]).json()
    by_cursor = search(client, search="Lisbn", host=host.id, page_size="2", cursor="")
    cursor_next = client.get(by_cursor["next"]).json()
    facets = client.get("/api/products/facets/", params={"search": "Lisbn", "host": host.id}).json()

    assert exact["count"] == 3 and "fuzzy" not in exact
    assert typo["fuzzy"] is True and typo["count"] == 3 and second["fuzzy"] is True
    assert {p["id"] for p in typo["results"] + second["results"]} == {m["id"] for m in made}
    assert parse_qs(urlsplit(by_cursor["next"]).query)["cursor"]
    assert {p["id"] for p in by_cursor["results"] + cursor_next["results"]} == {m["id"] for m in made}
    assert cursor_next["fuzzy"] is True
    assert facets["fuzzy"] is True and facets["count"] == 3
    assert search(client, search="Qxzvw" + word(), host=host.id) == {
        "count": 0,
        "next": None,
        "previous": None,
        "fuzzy": True,
        "results": [],
    }
