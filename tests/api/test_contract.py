"""The OpenAPI document is typed end to end, and every shape in it is well-formed.

The plugin tests/fix_contract.py checks every response of the suite against this document;
these tests check the document itself: every operation declared in SQL, every success
response and body typed, every reference resolved, every schema valid JSON Schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from api.openapi import NOT_BLANK, expand
from api.routes import ROUTES


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_every_route_is_an_operation_declared_in_sql(owner: Any) -> None:
    declared = {f for (f,) in owner.execute("select function from api.contract_operations")}
    assert {r.function for r in ROUTES} - declared == set()
    assert declared - {r.function for r in ROUTES} == set(), "a declaration for a function no route calls"


def test_descriptions_leave_out_why_a_function_is_security_definer(document: dict[str, Any], owner: Any) -> None:
    (definers,) = owner.execute(
        "select count(*) from pg_proc p where p.pronamespace = 'api'::regnamespace and p.prosecdef"
        " and obj_description(p.oid, 'pg_proc') like '%Security definer: %'"
    ).fetchone()
    assert definers > 0
    assert "Security definer" not in json.dumps(document)


def test_every_success_response_and_body_is_typed(document: dict[str, Any]) -> None:
    untyped = []
    for path, method, op in operations(document):
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                if media == "application/json" and content["schema"] in ({}, {"type": "object"}):
                    untyped.append(f"{method.upper()} {path} {status}")
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body and body["schema"] == {"type": "object"} and "preferences" not in path:
            untyped.append(f"{method.upper()} {path} body")
    assert untyped == []


def test_every_parameter_is_typed_and_every_list_is_a_typed_page(document: dict[str, Any]) -> None:
    for route in ROUTES:
        op = document["paths"][route.path][route.method.lower()]
        for param in op["parameters"]:
            if param["in"] == "header":
                continue
            assert param["schema"] != {"type": "string"} or param["name"] in ("code", "state", "error", "provider"), (
                route.path,
                param,
            )
        if route.page:
            page = op["responses"][str(route.status)]["content"]["application/json"]["schema"]
            assert page["required"] == ["count", "next", "previous", "results"]
            assert page["properties"]["results"]["items"], route.path


def test_every_schema_is_valid_and_every_reference_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    components = document["components"]
    for kind in ("schemas", "responses"):
        for name in {r.split("/")[-1] for r in re.findall(rf'"#/components/{kind}/(\w+)"', text)}:
            assert name in components[kind], f"#/components/{kind}/{name} is not defined"
    for schema in components["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for _path, _method, op in operations(document):
        for response in op["responses"].values():
            for content in response.get("content", {}).values():
                Draft202012Validator.check_schema(content["schema"])


def test_errors_are_documented_per_operation(document: dict[str, Any]) -> None:
    op = document["paths"]["/api/bookings/"]["post"]
    assert {"400", "401", "404", "409", "413", "415", "429", "503"} <= op["responses"].keys()  # 404: an unknown listing
    assert "429" in op["responses"] and "Retry-After" in document["components"]["responses"]["Problem429"]["headers"]
    detail = document["paths"]["/api/products/{id}/"]["get"]
    assert detail["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    assert {"200", "304", "400", "401", "404", "429", "503"} == detail["responses"].keys()
    assert detail["parameters"][1]["name"] == "If-None-Match" and "ETag" in detail["responses"]["200"]["headers"]


def test_the_shorthand() -> None:
    named = {"Base": {"id": "uuid"}}
    assert expand("decimal?", True)["type"] == ["string", "null"]
    assert expand("string(1..100)", False) == {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_BLANK}
    assert expand("pending|paid", True) == {"type": "string", "enum": ["pending", "paid"]}
    assert expand("[Photo]", True) == {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}}
    assert expand("Photo?", True) == {"anyOf": [{"$ref": "#/components/schemas/Photo"}, {"type": "null"}]}
    obj = expand({"...": "Base", "type": "string", "note?": "string?"}, True, named)
    assert obj["required"] == ["id", "type"] and obj["additionalProperties"] is False
    assert obj["properties"]["note"] == {"type": ["string", "null"]}
    assert "additionalProperties" not in expand({"a?": "string"}, False)
    assert expand({"type": "string", "description": "x"}, True) == {"type": "string", "description": "x"}
    assert expand("string(1..100)", True) == {"type": "string", "minLength": 1, "maxLength": 100}
    with pytest.raises(ValueError):
        expand("strin", True)


def test_the_shorthand_says_rules_across_fields() -> None:
    one = {"oneOf": [{"required": ["a"]}, {"required": ["b"]}], "not": {"required": ["a", "c"]}}
    obj = expand({"a?": "uuid", "b?": "uuid", "c?": "string", **one}, False)
    assert obj["oneOf"] == one["oneOf"] and obj["not"] == one["not"]  # JSON Schema as written, beside the fields
    assert obj["properties"]["a"] == {"type": "string", "format": "uuid"}
    rule = expand({"x?": "integer", "oneOf": [{"properties": {"x": "integer(1..)"}}, {"required": ["y"]}]}, False)
    assert rule["oneOf"][0]["properties"]["x"] == {
        "type": "integer",
        "minimum": 1,
    }  # shorthand inside a rule's properties
    validator = Draft202012Validator(obj)
    assert validator.is_valid({"a": "00000000-0000-0000-0000-000000000000"})
    assert not validator.is_valid({}) and not validator.is_valid({"a": "x", "b": "y"})


def test_required_query_parameters_headers_and_files_are_documented(document: dict[str, Any]) -> None:
    callback = {p["name"]: p for p in document["paths"]["/api/auth/{provider}/callback"]["get"]["parameters"]}
    assert callback["code"]["required"] and callback["state"]["required"] and not callback["error"]["required"]
    stripe = document["paths"]["/api/webhooks/stripe/"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in stripe["parameters"]] == [("Stripe-Signature", "header", True)]
    assert stripe["requestBody"]["required"]
    paypal = document["paths"]["/api/webhooks/paypal/"]["post"]
    assert {p["name"] for p in paypal["parameters"] if p["in"] == "header" and p["required"]} >= {
        "PAYPAL-TRANSMISSION-SIG"
    }
    photo = document["paths"]["/api/users/me/photo/"]["put"]["requestBody"]["content"]["multipart/form-data"]
    assert photo["schema"]["properties"]["file"]["minLength"] == 1
    conversation = document["paths"]["/api/conversations/"]["post"]
    assert len(conversation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]) == 2
    assert "404" in conversation["responses"]


def test_the_notification_types_named_in_the_contract_are_the_tables(document: dict[str, Any], owner: Any) -> None:
    rows = owner.execute("select type, mandatory from app_private.notification_types").fetchall()
    assert sorted(document["components"]["schemas"]["NotificationType"]["enum"]) == sorted(t for t, _ in rows)
    body = document["paths"]["/api/users/me/notification-preferences/"]["put"]["requestBody"]["content"]
    assert sorted(body["application/json"]["schema"]["properties"]) == sorted(t for t, mandatory in rows if mandatory)
