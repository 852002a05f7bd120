"""The backends layer on its own: the dialects' facts, connections kept per target, the retry helper."""

from __future__ import annotations

import gc
import subprocess
import sys
import time

import pytest

from agno_migrate.backends import connections, dialect_of, dispose, retry
from agno_migrate.backends import sql as backend_sql
from agno_migrate.target import Target


@pytest.mark.parametrize(
    "url, name, sql, transactional_ddl, has_schemas, creates_schema",
    [
        ("sqlite:///x.db", "sqlite", True, True, False, False),
        ("postgresql://u@h/app", "postgresql", True, True, True, True),
        ("mysql://u@h/app", "mysql", True, False, True, False),
        ("mongodb://h/app", "mongodb", False, False, True, False),
    ],
)
def test_each_backend_has_its_dialect(url, name, sql, transactional_ddl, has_schemas, creates_schema):
    target = Target.from_url(url)
    dialect = dialect_of(target)
    assert dialect is dialect_of(name)
    assert (dialect.name, dialect.sql, dialect.transactional_ddl) == (name, sql, transactional_ddl)
    assert (dialect.has_schemas, dialect.creates_schema) == (has_schemas, creates_schema)
    assert dialect.schema_of(target) == (target.schema if has_schemas else None)


def test_asking_a_dialect_loads_no_driver_nor_sqlalchemy():
    code = (
        "import sys; from agno_migrate.backends import dialect_of\n"
        "for name in ('sqlite', 'postgresql', 'mysql', 'mongodb'):\n"
        "    d = dialect_of(name); d.transactional_ddl, d.stores_nul, d.json_unescaped, d.embedded\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'psycopg', 'pymysql', 'pymongo'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_each_target_keeps_its_own_engine_until_disposed(tmp_path):
    a = Target.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    b = Target.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    assert connections.peek(a, "engine") is None  # nothing is made before it is asked for
    engine = backend_sql.engine(a)
    assert backend_sql.engine(a) is engine and backend_sql.engine(b) is not engine
    dispose(a)
    assert connections.peek(a, "engine") is None and connections.peek(b, "engine") is not None
    assert backend_sql.engine(a) is not engine  # a new one on the next use
    dispose(a)
    dispose(b)


def test_a_targets_engine_goes_with_the_target(tmp_path):
    target = Target.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    backend_sql.engine(target)
    key = id(target)
    assert key in connections._made
    del target
    gc.collect()
    assert key not in connections._made


def test_an_engine_is_for_sql_targets_and_a_database_for_mongodb_ones():
    from agno_migrate.backends import mongo
    from agno_migrate.errors import UsageError

    with pytest.raises(UsageError, match="not MongoDB"):
        backend_sql.engine(Target.from_url("mongodb://127.0.0.1/app"))
    with pytest.raises(UsageError, match="not a MongoDB URL"):
        mongo.database(Target.from_url("sqlite:///x.db"))


def test_backoff_pauses_grow_to_their_ceiling():
    pauses = retry.Backoff(first=0.05, cap=0.5).pauses()
    assert [round(next(pauses), 6) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    slower = retry.Backoff(first=0.05, cap=0.5, factor=1.5).pauses()
    assert [round(next(slower), 6) for _ in range(3)] == [0.05, 0.075, 0.1125]
    half = retry.Backoff(first=0.002, cap=0.1, jitter=retry.HALF_JITTER).pauses()
    for bound in (0.002, 0.004, 0.008, 0.016):
        assert bound / 2 <= next(half) <= bound
    full = retry.Backoff(first=0.004, cap=0.1, jitter=retry.FULL_JITTER).pauses()
    for bound in (0.004, 0.008, 0.016, 0.032, 0.064, 0.1, 0.1):
        assert 0 <= next(full) <= bound


def test_until_returns_the_first_success_and_gives_up_after_the_timeout():
    answers = iter([False, None, "got it"])
    assert retry.until(lambda: next(answers), retry.Backoff(first=0.001, cap=0.001), 5, RuntimeError) == "got it"
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        retry.until(lambda: False, retry.Backoff(first=0.01, cap=0.02), 0.1, TimeoutError)
    assert 0.1 <= time.monotonic() - started < 1


def test_a_pacer_waits_before_each_attempt_but_the_first(monkeypatch):
    slept = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    pace = retry.pacer(retry.Backoff(first=0.5, cap=2))
    for _ in range(4):
        pace()
    assert slept == [0.5, 1.0, 2]
