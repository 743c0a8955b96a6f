"""Contract plugin: every response the suite receives is checked against /openapi.json.

Every app a test builds is `contract_app(settings)` (the `client` and `api` fixtures,
LiveApp, and the tests that build their own). Each response to an operation of
the document is checked: its status must be documented for that operation, and a JSON
body must match the documented schema of that status (formats included). A violation
fails the test that received it (an autouse fixture), naming the operation and the error.

NEXUS_CONTRACT_SAMPLES=path appends each checked response as a JSON line to `path`
(method, template, function, status, body): the raw material for declaring a new shape.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from api import openapi
from api.app import create_app
from api.routes import ROUTES, Route
from api.settings import Settings

JSON_TYPES = ("application/json", "application/problem+json")
# How PostgreSQL's json type writes a key (json_build_object: "id" : 1); jsonb writes "id": 1.
# A quote inside a string is escaped (\"), so a value cannot match.
JSON_TYPE_SPACING = re.compile(rb'(?<!\\)" : ')


@dataclass
class Operation:
    route: Route
    pattern: re.Pattern[str]
    literal: int  # path characters outside parameters: the most literal template wins (/users/me/ over /users/{id}/)
    responses: dict[str, Any]


@dataclass
class Contract:
    document: dict[str, Any]
    operations: list[Operation] = field(default_factory=list)
    validators: dict[tuple[str, str, int], Draft202012Validator] = field(default_factory=dict)

    @classmethod
    def load(cls, database_url: str) -> Contract:
        with psycopg.connect(database_url, autocommit=True) as conn:
            document = openapi.document(openapi.load(conn))
        contract = cls(document)
        for route in ROUTES:
            regex = "^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(route.path)) + "$"
            literal = len(re.sub(r"{\w+}", "", route.path))
            responses = document["paths"][route.path][route.method.lower()]["responses"]
            contract.operations.append(Operation(route, re.compile(regex), literal, responses))
        return contract

    def match(self, method: str, path: str) -> Operation | None:
        """The operation a request reaches: of the paths that match, the most literal one (as the app
        routes: /products/facets/ is not /products/{id}/), and on it this method, if it has it (else a 405)."""
        paths = [op for op in self.operations if op.pattern.match(path)]
        if not paths:
            return None
        most = max(op.literal for op in paths)
        return next((op for op in paths if op.literal == most and op.route.method == method), None)

    def schema(self, op: Operation, status: int) -> dict[str, Any] | None:
        response = op.responses[str(status)]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        for media in JSON_TYPES:
            if media in response.get("content", {}):
                return response["content"][media]["schema"]  # type: ignore[no-any-return]
        return None

    def validator(self, op: Operation, status: int) -> Draft202012Validator | None:
        key = (op.route.method, op.route.path, status)
        if key not in self.validators:
            schema = self.schema(op, status)
            if schema is None:
                return None
            root = {**schema, "components": self.document["components"]}
            self.validators[key] = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return self.validators[key]

    def check(self, method: str, path: str, status: int, ctype: str, body: bytes) -> list[str]:
        """What is wrong with this response, per the document (nothing: [])."""
        op = self.match(method, path)
        if op is None:
            return []  # not an API operation (pages, health, media, 404s of unknown paths)
        name = f"{method} {op.route.path} -> {status}"
        if str(status) not in op.responses:
            return [f"{name}: status not documented (documented: {', '.join(op.responses)})"]
        validator = self.validator(op, status)
        media = ctype.split(";")[0].strip()
        if validator is None or media not in JSON_TYPES:
            return []
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return [f"{name}: {media} body is not JSON: {body[:200]!r}"]
        if JSON_TYPE_SPACING.search(body):  # sql/CONVENTIONS.md: answers are jsonb
            return [f"{name}: built as PostgreSQL's json type ('\" : '), not jsonb: {body[:120]!r}"]
        return [
            f"{name}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:300]}"
            for error in validator.iter_errors(data)
        ]


class State:
    contract: Contract | None = None
    violations: list[str] = []
    checked = 0  # responses checked this session
    samples: str | None = os.environ.get("NEXUS_CONTRACT_SAMPLES")


def contract_for(settings: Settings) -> Contract:
    if State.contract is None:
        State.contract = Contract.load(settings.database_url)
    return State.contract


class Checked:
    """An app whose every API response is checked against the contract (attributes are the app's)."""

    def __init__(self, app: Starlette, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        status, ctype, chunks = 0, "", []

        async def capture(message: Message) -> None:
            nonlocal status, ctype
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        ctype = value.decode("latin-1")
            elif message["type"] == "http.response.body" and not ctype.startswith("text/event-stream"):
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        contract = contract_for(self.settings)
        body = b"".join(chunks)
        State.violations += contract.check(scope["method"], scope["path"], status, ctype, body)
        State.checked += 1
        if State.samples and (op := contract.match(scope["method"], scope["path"])):
            record(op, status, body)


def record(op: Operation, status: int, body: bytes) -> None:
    """Keep one response as a sample (NEXUS_CONTRACT_SAMPLES)."""
    assert State.samples
    with open(State.samples, "ab") as out:
        sample = {"function": op.route.function, "method": op.route.method, "path": op.route.path}
        sample |= {"status": status, "body": body.decode("utf-8", "replace")[:20000]}
        out.write(orjson.dumps(sample) + b"\n")


def contract_app(settings: Settings) -> Checked:
    """create_app(settings), checked against the contract."""
    return Checked(create_app(settings), settings)


@pytest.fixture(autouse=True)
def responses_match_the_contract() -> Iterator[None]:
    """Fail the test if any response it received broke the documented contract."""
    State.violations = []
    yield
    found, State.violations = State.violations, []
    if found:
        unique = list(dict.fromkeys(found))
        pytest.fail("responses broke the OpenAPI contract:\n  " + "\n  ".join(unique[:20]), pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if State.checked:
        terminalreporter.write_line(f"contract: {State.checked} API responses checked against /openapi.json")
