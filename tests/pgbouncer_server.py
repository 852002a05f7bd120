"""A throw-away PgBouncer for the tests: transaction pooling (``pool_mode = transaction``, 4 server
connections per database and user) in front of the test PostgreSQL, on a free port, its config in a
temporary directory, run in the foreground as a child process and stopped at the end.

The binary is Debian's ``pgbouncer`` package (1.18; ``.ci/run`` installs it). The test server
trusts local connections, so PgBouncer does too (``auth_type = trust``: the user only has to be
listed in its ``auth_file``). As root, PgBouncer drops to the ``postgres`` user (it refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
POOL_SIZE = 4


class PgBouncerError(RuntimeError):
    pass


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise PgBouncerError("no pgbouncer binary (apt-get install pgbouncer)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgBouncer:
    """``PgBouncer.start(host, port, user)`` gives a running pooler; ``url_for(url)`` routes a
    PostgreSQL URL of that server through it; ``stop()`` ends it."""

    def __init__(self, directory: str, port: int, proc: subprocess.Popen):
        self.directory = directory
        self.port = port
        self.proc = proc

    @classmethod
    def start(cls, host: str, port: int, user: str) -> PgBouncer:
        binary = pgbouncer_binary()
        directory = tempfile.mkdtemp(prefix="agno-migrate-pgbouncer-")
        listen = _free_port()
        run_as = "postgres" if os.geteuid() == 0 else None
        with open(os.path.join(directory, "users.txt"), "w") as fh:
            fh.write(f'"{user}" ""\n')
        lines = [
            "[databases]",
            f"* = host={host} port={port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {listen}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {directory}/users.txt",
            "pool_mode = transaction",
            f"default_pool_size = {POOL_SIZE}",
            "max_client_conn = 500",
            "ignore_startup_parameters = extra_float_digits,options",
            f"logfile = {directory}/pgbouncer.log",
        ]
        if run_as:
            lines.append(f"user = {run_as}")
        config = os.path.join(directory, "pgbouncer.ini")
        with open(config, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        if run_as:
            pw = pwd.getpwnam(run_as)
            for path in (directory, *(os.path.join(directory, n) for n in os.listdir(directory))):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        proc = subprocess.Popen([binary, config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = cls(directory, listen, proc)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                tail = server.log_tail()
                server.stop()
                raise PgBouncerError(f"pgbouncer exited with {proc.returncode}\n--- pgbouncer.log ---\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", listen), timeout=1):
                    return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = server.log_tail()
                server.stop()
                raise PgBouncerError(f"pgbouncer did not listen within {START_TIMEOUT:.0f} s\n{tail}")
            time.sleep(0.05)

    def url_for(self, url: str) -> str:
        """``url`` (``postgresql+psycopg://user[:pw]@host:port/db``) through this pooler."""
        from sqlalchemy.engine import make_url

        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(os.path.join(self.directory, "pgbouncer.log"), errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except (OSError, TypeError):
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM (SIGKILL after STOP_TIMEOUT), wait, remove the directory."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
