"""Debian's pgbouncer on a free loopback port in front of a cluster, in transaction pooling, as a
deployment puts it between the API and PostgreSQL (compose.yaml). make test-pgbouncer runs the API
and SQL tests through one (tests/fix_db.py); the soak restarts one under load (soak/faults.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# Seconds PgBouncer waits after a failed login to PostgreSQL before it tries again, answering every
# client "server login has been failing" meanwhile. Its default, 15, turned a PostgreSQL restart of
# 0.3 s into 15 s of 503s in the soak; compose.yaml sets the same (SERVER_LOGIN_RETRY).
LOGIN_RETRY = 1


class PgBouncer:
    def __init__(self, owner_url: str) -> None:
        target = conninfo_to_dict(owner_url)
        self.dir = Path(tempfile.mkdtemp(prefix="nexus-pgbouncer-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.dir / "userlist.txt").write_text('"authenticator" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            f"""[databases]
nexus = host={target["host"]} port={target["port"]} dbname=nexus
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 60
ignore_startup_parameters = extra_float_digits
server_login_retry = {LOGIN_RETRY}
logfile = {self.dir}/pgbouncer.log
"""
        )
        self.url = f"postgresql://authenticator@127.0.0.1:{self.port}/nexus"

    def __enter__(self) -> PgBouncer:
        if not Path(BINARY).exists():
            raise RuntimeError("pgbouncer is missing: apt-get install -y pgbouncer")
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            shutil.chown(self.dir, "postgres")
            for f in self.dir.iterdir():
                shutil.chown(f, "postgres")
        self.start()
        return self

    def start(self) -> None:
        command = [BINARY, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
        # setpriv execs pgbouncer: the same process. Its log is in its logfile, not on our stderr.
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=1) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, grace: float = 10.0) -> None:
        """A safe shutdown (SIGINT: transactions under way finish, then it exits; 1.18's PAUSE and
        SHUTDOWN), an immediate one (SIGTERM) if that takes longer than `grace`."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """What `systemctl restart pgbouncer` does: every client connection is closed."""
        self.stop()
        self.start()

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "process") and self.process.poll() is None:  # started
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
