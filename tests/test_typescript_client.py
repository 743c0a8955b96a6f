"""The OpenAPI document as a TypeScript client sees it.

openapi-typescript (the npm package, pinned in clients/typescript/package-lock.json and installed
there by `make test`) turns /openapi.json into nexus.d.ts; then `tsc --noEmit` checks
clients/typescript/usage.ts, a small frontend, against it. The check passes only if the document
is typed well enough to build on: see the head of usage.ts. Everything runs from node_modules,
with no network, on copies in a temporary folder (nothing is written into the repository).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "typescript"
BIN = CLIENT / "node_modules" / ".bin"


def tool(name: str) -> Path:
    if shutil.which("node") is None:
        pytest.skip("Node.js is missing: sudo apt-get install -y nodejs npm (make test installs it as root)")
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed: npm ci --prefix {CLIENT.relative_to(CLIENT.parents[1])}")
    return path


def run(folder: Path, *command: str | Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([str(c) for c in command], cwd=folder, capture_output=True, text=True, timeout=120)
    return result, time.monotonic() - started


def test_a_typescript_client_generated_from_the_document_type_checks(
    client: TestClient, tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    openapi_typescript, tsc = tool("openapi-typescript"), tool("tsc")
    document = client.get("/openapi.json").json()
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    for name in ("usage.ts", "tsconfig.json"):
        shutil.copy(CLIENT / name, tmp_path)

    generated, generate_seconds = run(tmp_path, openapi_typescript, "openapi.json", "-o", "nexus.d.ts")
    checked, check_seconds = run(tmp_path, tsc, "--noEmit", "--pretty", "false", "-p", ".")

    paths, schemas = len(document["paths"]), len(document.get("components", {}).get("schemas", {}))
    summary = (
        f"openapi-typescript: {paths} paths, {schemas} schemas in {generate_seconds:.1f} s; "
        f"tsc --noEmit usage.ts: {check_seconds:.1f} s"
    )
    print(summary)
    record_property("openapi_paths", paths)
    record_property("openapi_schemas", schemas)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert checked.returncode == 0, f"{summary}\n{checked.stdout}{checked.stderr}"
