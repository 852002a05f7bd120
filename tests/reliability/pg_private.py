"""A PostgreSQL server of the suite's own: initdb in a temporary directory, password (scram-sha-256)
authentication, a free port on 127.0.0.1, stopped at the end.

The machine's server trusts every local connection (no password is ever checked), and it is
shared: a "wrong password" needs a server that checks passwords, and a crash-restart under a
running upgrade must not hit the other tests' server. The binaries are those of the installed
PostgreSQL (``pg_config --bindir``, else /usr/lib/postgresql/*/bin); as root they run as the
``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from conftest import Database

from .support import SECRET


def _bindir() -> Path:
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no initdb found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    def __init__(self):
        self.bindir = _bindir()
        self.directory = Path(tempfile.mkdtemp(prefix="agno-migrate-pg-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        pwfile = self.directory / "pw"
        pwfile.write_text(SECRET + "\n")
        if self.user:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-A", "scram-sha-256", "-U", "postgres", f"--pwfile={pwfile}",
                  "-N", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        pwfile.unlink()
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr[-2000:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def crash_restart(self) -> None:
        """Stop as in a crash (immediate: no checkpoint, clients cut off), then start (recovery)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.start()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres", password: str = SECRET) -> str:
        from urllib.parse import quote

        return f"postgresql+psycopg://postgres:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> Database:
        import psycopg

        name = f"amt_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres password={SECRET}",
                             autocommit=True) as admin:  # fmt: skip
            admin.execute(f'CREATE DATABASE "{name}"')
        return Database("postgresql", self.url(name))
