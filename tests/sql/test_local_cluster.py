"""`make run`'s database steps work wherever a newcomer clones, even in a folder only root can enter.

As root, with the project in a 0700 folder (like root's home, or a mktemp -d folder), the
cluster goes to a folder the server's user owns, `.pg` links to it, and the migrations run
through the link; `make stop` and `make clean` find it through the link too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="this is about root's private folders; run as root")


def test_the_local_cluster_starts_and_migrates_from_a_private_folder() -> None:
    private = Path(tempfile.mkdtemp(prefix="nexus-clone-"))  # mode 0700, as mktemp -d makes it
    project = private / "nexus"
    env = {**os.environ, "PGPORT": "", "DATABASE_URL": ""}
    env.pop("PGPORT")
    try:
        assert oct(private.stat().st_mode & 0o777) == "0o700"
        shutil.copytree(ROOT / "scripts", project / "scripts")
        (project / "sql").mkdir()
        shutil.copy(ROOT / "sql" / "superuser.sql", project / "sql")  # pg-local's superuser step (PostGIS)
        # Run from inside the clone, as a newcomer would: the server's user cannot enter it.
        start = subprocess.run(
            [project / "scripts" / "pg-local", "start"], cwd=project, env=env, capture_output=True, text=True
        )
        assert start.returncode == 0, start.stderr
        assert "could not change directory" not in start.stdout + start.stderr, start.stderr
        assert (project / ".pg").is_symlink() and "links to it" in start.stdout
        outside = (project / ".pg").resolve()
        assert not str(outside).startswith(str(private))

        url = f"postgresql://nexus@/nexus?host={project / '.pg' / 'run'}"  # what api.settings builds: through the link
        migrated = subprocess.run(
            [sys.executable, "-m", "api.migrate", url], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert migrated.returncode == 0, migrated.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) > 0 from app.currencies").fetchone() == (True,)

        again = subprocess.run([project / "scripts" / "pg-local", "start"], env=env, capture_output=True, text=True)
        assert again.returncode == 0 and "links to it" not in again.stdout  # the second run reuses it
    finally:
        subprocess.run([project / "scripts" / "pg-local", "stop"], env=env, capture_output=True)
        target = (project / ".pg").resolve() if (project / ".pg").is_symlink() else None
        shutil.rmtree(private, ignore_errors=True)
        if target:
            shutil.rmtree(target, ignore_errors=True)
