"""Unit tests of agno_migrate.target: URL parsing and normalising, defaults, masking, names."""

from __future__ import annotations

import pytest

from agno_migrate.backends import connections
from agno_migrate.errors import EXIT_USAGE, UsageError
from agno_migrate.target import (
    DEFAULT_URL,
    Target,
    mask_url,
    resolve,
    validate_identifier,
)

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/app"


# --- URL normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, backend, driver_url",
    [
        ("postgresql://u@db.example:5432/app", "postgresql", "postgresql+psycopg://u@db.example:5432/app"),
        ("postgres://u@db.example:5432/app", "postgresql", "postgresql+psycopg://u@db.example:5432/app"),
        ("POSTGRESQL://u@db.example/app", "postgresql", "postgresql+psycopg://u@db.example/app"),
        ("mysql://root@127.0.0.1:3306/app", "mysql", "mysql+pymysql://root@127.0.0.1:3306/app"),
        ("mariadb://root@127.0.0.1:3306/app", "mysql", "mysql+pymysql://root@127.0.0.1:3306/app"),
        ("  postgresql://u@h/app\n", "postgresql", "postgresql+psycopg://u@h/app"),
    ],
)
def test_bare_schemes_get_the_default_driver(url, backend, driver_url):
    target = Target.from_url(url)
    assert target.backend == backend
    assert target.driver_url == driver_url
    assert target.url == url.strip()
    assert target.url_defaulted is False


@pytest.mark.parametrize(
    "url, backend, driver_url",
    [
        ("postgresql+psycopg2://u@h/app", "postgresql", "postgresql+psycopg2://u@h/app"),
        ("postgresql+asyncpg://u@h/app", "postgresql", "postgresql+asyncpg://u@h/app"),
        ("postgres+psycopg://u@h/app", "postgresql", "postgresql+psycopg://u@h/app"),
        ("mysql+mysqldb://root@h/app", "mysql", "mysql+mysqldb://root@h/app"),
        ("mariadb+pymysql://root@h/app", "mysql", "mysql+pymysql://root@h/app"),
        ("sqlite+pysqlite:///x.db", "sqlite", "sqlite+pysqlite:///x.db"),
    ],
)
def test_explicit_drivers_are_kept(url, backend, driver_url):
    target = Target.from_url(url)
    assert target.backend == backend
    assert target.driver_url == driver_url


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///agno.db",
        "sqlite:///relative/dir/agno.db",
        "sqlite:////tmp/abs/agno.db",
        "sqlite:///:memory:",
        "sqlite://",
    ],
)
def test_sqlite_urls(url):
    target = Target.from_url(url)
    assert target.backend == "sqlite"
    assert target.driver_url == url
    assert target.schema is None
    assert target.url_defaulted is False


def test_default_url_when_none():
    target = Target.from_url(None)
    assert target.url == DEFAULT_URL == "sqlite:///agno.db"
    assert target.backend == "sqlite"
    assert target.url_defaulted is True
    # the same URL given explicitly is not "defaulted"
    assert Target.from_url("sqlite:///agno.db").url_defaulted is False
    assert resolve(None).url_defaulted is True


def test_resolve_returns_a_target_as_is():
    target = Target.from_url(PG)
    assert resolve(target) is target
    assert resolve(PG) == target


def test_default_names_and_lock_timeout():
    target = Target.from_url(PG)
    assert (target.session_table, target.runs_table, target.agno_versions_table) == (
        "agno_sessions",
        "agno_runs",
        "agno_schema_versions",
    )
    assert target.lock_timeout == 60.0
    assert Target.from_url(PG, lock_timeout=2).lock_timeout == 2.0


# --- schemas -------------------------------------------------------------------------------------


def test_postgresql_default_schema_is_ai():
    assert Target.from_url("postgresql://u@h/app").schema == "ai"
    assert Target.from_url("postgres://u@h/app").schema == "ai"
    assert Target.from_url("postgresql://u@h/app", schema="tenant_1").schema == "tenant_1"


def test_mysql_schema_is_the_url_database():
    assert Target.from_url("mysql://root@h:3306/app_db").schema == "app_db"
    assert Target.from_url("mariadb+pymysql://root@h/other").schema == "other"
    assert Target.from_url("mysql://root@h/app_db", schema="explicit").schema == "explicit"


def test_mysql_without_database_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        Target.from_url("mysql://root@127.0.0.1:3306")
    assert info.value.exit_code == EXIT_USAGE
    assert "database" in str(info.value)
    with pytest.raises(UsageError):
        Target.from_url("mysql://root@127.0.0.1:3306/")
    # ... unless a schema is given
    assert Target.from_url("mysql://root@127.0.0.1:3306", schema="given").schema == "given"


def test_db_schema_on_sqlite_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        Target.from_url("sqlite:///x.db", schema="ai")
    assert info.value.exit_code == EXIT_USAGE
    assert "SQLite" in str(info.value)


# --- malformed URLs, unknown schemes -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "://host/db",
        "localhost:5432/app",
        "postgresql:///app",  # no host
        "postgresql://u@h:notaport/app",
        "postgresql+psycopg://u@[::1/app",
        "mysql://root@:3306/app",
    ],
)
def test_malformed_urls_are_usage_errors(url):
    with pytest.raises(UsageError) as info:
        Target.from_url(url)
    assert info.value.exit_code == EXIT_USAGE == 2
    assert "malformed" in str(info.value)


@pytest.mark.parametrize("url", ["foo://x", "oracle://u@h/db", "http://example.com/db", "mssql+pyodbc://u@h/db"])
def test_unknown_schemes_are_usage_errors(url):
    with pytest.raises(UsageError) as info:
        Target.from_url(url)
    assert info.value.exit_code == 2
    assert "unknown database URL scheme" in str(info.value)
    assert url.split("://")[0] in str(info.value)


def test_unknown_scheme_message_does_not_show_the_password():
    with pytest.raises(UsageError) as info:
        Target.from_url("foo://user:s3cret-pw@host/db")
    assert "s3cret-pw" not in str(info.value)


# --- masking -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, masked",
    [
        ("postgresql://user:s3cret@db:5432/app", "postgresql://user:***@db:5432/app"),
        ("postgresql+psycopg://user:s3cret@db/app", "postgresql+psycopg://user:***@db/app"),
        ("mysql+pymysql://root:wrong-pw@127.0.0.1:3306/test", "mysql+pymysql://root:***@127.0.0.1:3306/test"),
        ("postgresql://:only-pw@db/app", "postgresql://:***@db/app"),
        ("postgresql://user:p%40ss@db/app", "postgresql://user:***@db/app"),
        ("postgresql://user:s?cr#t@db/app", "postgresql://user:***@db/app"),
    ],
)
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked
    assert Target.from_url(url).masked_url == masked


@pytest.mark.parametrize(
    "url",
    ["postgresql://user@db:5432/app", "sqlite:///agno.db", "sqlite:////tmp/a:b.db", "mysql://root@127.0.0.1:3306/test"],
)
def test_mask_url_leaves_urls_without_password_alone(url):
    assert mask_url(url) == url


def test_mask_url_in_text():
    text = "cannot connect to postgresql://u:s3cret@h/db: refused"
    assert mask_url(text) == "cannot connect to postgresql://u:***@h/db: refused"


def test_mask_url_hides_a_password_containing_a_slash():
    url = "postgresql://user:pa/s3cret@db/app"
    assert Target.from_url(url).driver_url  # a URL SQLAlchemy accepts
    assert "s3cret" not in mask_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:s3cret-pw@host:notaport/db",
        "postgresql://user:s3cret-pw@/db",
        "postgresql+psycopg://user:s3cret-pw@[::1/db",
        "mysql://root:s3cret-pw@127.0.0.1:3306",
    ],
)
def test_malformed_url_errors_do_not_show_the_password(url):
    with pytest.raises(UsageError) as info:
        Target.from_url(url)
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize("url", ["postgresql:/user:s3cret-pw@host/db", "user:s3cret-pw@host/db"])
def test_malformed_url_without_scheme_separator_does_not_show_the_password(url):
    with pytest.raises(UsageError) as info:
        Target.from_url(url)
    assert "s3cret-pw" not in str(info.value)


# --- identifiers ---------------------------------------------------------------------------------

BAD_NAMES = [
    'agno"sessions',
    "agno'sessions",
    "agno sessions",
    "agno;sessions",
    "x; DROP TABLE y",
    "agno-sessions",
    "ai.agno_sessions",
    "1sessions",
    "tablé",
    "`x`",
]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("option", ["session_table", "runs_table"])
def test_invalid_table_names_are_rejected(option, name):
    with pytest.raises(UsageError) as info:
        Target.from_url(PG, **{option: name})
    assert info.value.exit_code == 2
    assert "invalid" in str(info.value)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_schema_names_are_rejected(name):
    with pytest.raises(UsageError) as info:
        Target.from_url(PG, schema=name)
    assert info.value.exit_code == 2
    with pytest.raises(UsageError):
        Target.from_url("mysql://root@h/app", schema=name)


def test_mysql_database_name_from_url_is_validated_too():
    with pytest.raises(UsageError):
        Target.from_url("mysql://root@h/app-db")


@pytest.mark.parametrize("option", ["session_table", "runs_table"])
def test_table_name_length_limit(option):
    runs = {"runs_table": "r"} if option == "session_table" else {}  # (its default, t*40_runs, is too long)
    assert getattr(Target.from_url(PG, **{option: "t" * 40, **runs}), option) == "t" * 40
    with pytest.raises(UsageError) as info:
        Target.from_url(PG, **{option: "t" * 41, **runs})
    assert "40" in str(info.value)


def test_schema_name_length_limit():
    assert Target.from_url(PG, schema="s" * 63).schema == "s" * 63
    with pytest.raises(UsageError):
        Target.from_url(PG, schema="s" * 64)


def test_valid_names_are_accepted():
    target = Target.from_url(PG, schema="_Tenant_9", session_table="MySessions_2", runs_table="_runs")
    assert (target.schema, target.session_table, target.runs_table) == ("_Tenant_9", "MySessions_2", "_runs")


def test_validate_identifier_directly():
    assert validate_identifier("agno_sessions", "session table name") == "agno_sessions"
    for bad in ("", None, 42, "a b"):
        with pytest.raises(UsageError):
            validate_identifier(bad, "session table name")


@pytest.mark.parametrize("option", ["session_table", "runs_table", "schema"])
def test_trailing_newline_in_a_name_is_rejected(option):
    with pytest.raises(UsageError):
        Target.from_url(PG, **{option: "agno_x\n"})


def test_runs_table_must_differ_from_session_table():
    with pytest.raises(UsageError):
        Target.from_url(PG, session_table="same", runs_table="same")


def test_version_table_is_per_session_table():
    a = Target.from_url(PG)
    b = Target.from_url(PG, session_table="other_sessions")
    assert a.version_table == "agno_migrate_agno_sessions"
    assert b.version_table == "agno_migrate_other_sessions"
    assert a.version_table != b.version_table
    assert a.lock_name != b.lock_name
    long_a = Target.from_url(PG, session_table="a" * 40, runs_table="runs_a")
    long_b = Target.from_url(PG, session_table="a" * 39 + "b", runs_table="runs_b")
    assert long_a.version_table != long_b.version_table
    assert len(long_a.version_table) <= 63


def test_no_engine_is_created_by_parsing():
    target = Target.from_url("postgresql://u:pw@unreachable.invalid/app")
    assert connections.peek(target, "engine") is None
