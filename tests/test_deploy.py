"""The deployment files: what can be checked on a machine that cannot pull images.

- compose.yaml validates against the Compose Specification's JSON schema (tests/compose-spec.json,
  from github.com/compose-spec/compose-spec, schema/compose-spec.json, Apache-2.0);
- the Dockerfile passes hadolint, and its build step runs here in a fresh venv;
- each Procfile process starts: release migrates, web serves /readyz, worker runs until SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())

    jsonschema.Draft7Validator(schema).validate(compose)
    assert {"db", "migrate", "pgbouncer", "api", "worker"} <= compose["services"].keys()
    assert compose["services"]["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_starts_the_worker_and_the_api_again_when_they_exit() -> None:
    # The soak (soak/) restarts PostgreSQL under load: the job worker exits then, and without a
    # restart policy `docker compose up` would run on with no worker (no payment, refund or email).
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for service in ("worker", "api"):
        assert compose["services"][service]["restart"] == "unless-stopped", service


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    r = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)

    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_the_dockerfiles_build_step_installs_the_app_in_a_fresh_venv(tmp_path: Path) -> None:
    """RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir . — here, into a temporary folder."""
    run_lines = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("RUN python -m venv")
    ]
    (command,) = run_lines
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "api", tmp_path / "api", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"

    r = subprocess.run(
        command[len("RUN ") :].replace("/venv", str(venv)),
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert r.returncode == 0, r.stderr[-2000:]
    check = subprocess.run(
        [venv / "bin" / "python", "-c", "import api.serve, api.worker, api.migrate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def procfile() -> dict[str, str]:
    return dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())


def test_each_procfile_process_starts(owner_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # `python` is the app's, as on Heroku
        "DATABASE_URL": owner_url,
        "PORT": str(port),
        "NEXUS_ENV": "development",
        "LOG_LEVEL": "warning",
        "DRAIN_SECONDS": "0",  # stopped at the end: no balancer to tell
    }
    processes = procfile()
    assert processes.keys() == {"web", "worker", "release"}

    release = subprocess.run(
        processes["release"], shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert release.returncode == 0 and "migrated" in release.stdout, release.stderr

    web = subprocess.Popen(processes["web"], shell=True, cwd=ROOT, env=env, start_new_session=True)
    worker = subprocess.Popen(processes["worker"], shell=True, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "web did not come up"
            time.sleep(0.2)
        time.sleep(1)
        assert worker.poll() is None, "the worker exited"
    finally:
        for process in (web, worker):
            os.killpg(process.pid, signal.SIGTERM)  # as Heroku stops a dyno: SIGTERM to the process group
        web.wait(timeout=30)
        worker.wait(timeout=30)
    deadline = time.monotonic() + 30
    while True:  # drained and gone
        try:
            httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
        except httpx2.HTTPError:
            break
        assert time.monotonic() < deadline, "web kept serving after SIGTERM"
        time.sleep(0.2)
