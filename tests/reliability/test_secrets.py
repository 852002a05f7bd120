"""Secrets: no command, error, log line or --json output shows the password of the URL.

Every PostgreSQL and MariaDB URL of the reliability suite carries support.SECRET, and every
command and child process of the session records what it printed (support.OUTPUTS). This module
runs last (pytest runs the files in name order): it adds every command and the output modes on
PostgreSQL and MariaDB, then greps everything the session printed for the password, plain or URL-quoted.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from .support import HEAD, OUTPUTS, SECRET, SECRET_QUOTED, SECRET_RAW, SECRET_SSL, SECRETS, clean_env, cli, note_case


@pytest.mark.backends("postgresql", "mysql", "mongodb")  # a SQLite URL holds no password
def test_every_command_in_every_mode_masks_the_password(rdb, backend, tmp_path):
    note_case("password in the URL of every command")
    assert SECRET_QUOTED in rdb(backend).url
    db = rdb(backend)
    db.load("2.5.0")
    url = db.url
    commands = [("plan",), ("check",), ("upgrade", "--dry-run"), ("upgrade", "--sql"), ("upgrade",), ("history",),
                ("downgrade", "--to", "2.0.0"), ("stamp", "9.9.9")]  # fmt: skip
    for args in commands:
        assert "Traceback" not in cli(*args, url=url, cwd=tmp_path).err
    for mode in (("--json",), ("-v",)):
        for args in (("current",), ("upgrade",), ("stamp", HEAD), ("upgrade", "--to", "nope")):
            assert "Traceback" not in cli(*mode, *args, url=url, cwd=tmp_path).err
    cli("current", env=clean_env(AGNO_DB_URL=url), cwd=tmp_path)  # the URL from the environment
    if backend == "mongodb":  # MongoDB has no missing database (one is made on first write): a wrong password
        host = url.split("@", 1)[1].split("/", 1)[0]
        brokens = (url.replace(SECRET_QUOTED, "Wr0ng-pw"), url.replace(host, "127.0.0.1:1"))
    else:
        closed_port = make_url(url).set(port=1).render_as_string(hide_password=False)
        brokens = (url.rsplit("/", 1)[0] + "/amt_no_such_db", closed_port)
    for broken in brokens:
        for mode in ((), ("--json",), ("-v",)):
            assert cli(*mode, "upgrade", url=broken, cwd=tmp_path).code == 5
    masked = [text for _, text in OUTPUTS if "***@" in text]
    assert masked, "no output showed a masked URL: the masking was not exercised"


def test_the_suite_wide_guard_knows_every_password_of_the_suite():
    from conftest import TEST_PASSWORDS, password_leaks

    assert set(SECRETS) <= set(TEST_PASSWORDS)
    assert password_leaks(f"x {quote(SECRET_RAW, safe='')} y") == [SECRET_RAW]


def test_no_output_of_the_suite_shows_the_password():
    everything = "\n".join(text for _, text in OUTPUTS)
    assert len(OUTPUTS) >= 50, f"only {len(OUTPUTS)} outputs recorded"
    for secret in (SECRET, SECRET_QUOTED, SECRET.split(":")[1]):
        leaks = [what for what, text in OUTPUTS if secret in text]
        assert not leaks, f"the password shows in the output of: {leaks[:5]}"
    assert "***" in everything


# --- every credential form x every entry point ---------------------------------------------------


def _fragments(secret: str, size: int = 6) -> set[str]:
    """Every piece of ``secret`` of ``size`` characters, as written and URL-quoted: a password
    printed partly (after a raw '@' in it, say) still shows."""
    out = set()
    for form in (secret, quote(secret, safe="")):
        out |= {form[i : i + size] for i in range(len(form) - size + 1)}
    return out


LEAK_PIECES = set().union(*(_fragments(s) for s in SECRETS))


def leaked(text: str) -> list[str]:
    return sorted(piece for piece in LEAK_PIECES if piece in text)


def _set_port(url: str, port: int) -> str:
    scheme, _, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    host, _, tail = hostpart.partition("/")
    return f"{scheme}://{userinfo}{at}{host.rsplit(':', 1)[0]}:{port}/{tail}"


def _forms(backend: str, rdb, private_pg, tmp_path) -> dict[str, tuple[str | None, str]]:
    """credential form -> (a URL that works or None, a URL that fails), on ``backend``."""
    q = quote(SECRET, safe="")
    if backend == "postgresql":  # the suite's own server: it checks passwords
        db = private_pg.new_database()
        port, name = private_pg.port, db.url.rsplit("/", 1)[1]
        passfile = tmp_path / "pgpass"
        passfile.write_text(f"127.0.0.1:{port}:*:postgres:{SECRET.replace(':', chr(92) + ':')}\n")
        passfile.chmod(0o600)
        bare = f"postgresql://postgres@127.0.0.1:{port}/{name}"
        forms = {
            "userinfo": db.url,
            "query password": f"{bare}?password={q}",
            "sslpassword": f"{db.url}?sslpassword={quote(SECRET_SSL, safe='')}",
            "passfile": f"{bare}?passfile={passfile}",
        }
        raw = f"postgresql://postgres:{SECRET_RAW}@127.0.0.1:{port}/{name}"
    elif backend == "mysql":
        url = rdb("mysql").url
        user, host = url.split("://", 1)[1].split(":", 1)[0], url.rsplit("@", 1)[1]
        forms = {"userinfo": url, "query password": f"mysql+pymysql://{user}@{host}?password={q}"}
        raw = f"mysql+pymysql://{user}:{SECRET_RAW}@{host}"
    else:
        url = rdb("mongodb").url
        forms = {"userinfo": url, "tls key password": f"{url}&tlsCertificateKeyFilePassword={quote(SECRET_SSL)}"}
        raw = url.replace(q, SECRET_RAW)
    out = {form: (ok, _set_port(ok, 1)) for form, ok in forms.items()}
    out["unencoded"] = (None, raw)
    return out


@pytest.mark.backends("postgresql", "mysql", "mongodb")
def test_no_credential_form_shows_through_any_entry_point(rdb, backend, private_pg, tmp_path, caplog):
    """userinfo (quoted, or with a raw '@ : / %'), ?password=, sslpassword, passfile, a MongoDB
    option: through the CLI (plain, --json, -v, the URL from the environment), the library's
    results and exceptions (str and repr), the store, and every log record at DEBUG."""
    import logging

    import agno_migrate

    note_case("every credential form through every entry point")
    caplog.set_level(logging.DEBUG)
    texts: list[tuple[str, str]] = []
    worked = set()
    for form, (ok, broken) in _forms(backend, rdb, private_pg, tmp_path).items():
        if ok is not None and not (backend == "mongodb" and form != "userinfo"):
            result = cli("-v", "upgrade", url=ok, cwd=tmp_path)
            assert result.code == 0, (form, result.err)
            worked.add(form)
            for args in (("current",), ("--json", "current"), ("-v", "check"), ("--json", "upgrade", "--to", "x")):
                result = cli(*args, url=ok, cwd=tmp_path)
                assert "Traceback" not in result.err, (form, args, result)
                if args == ("--json", "current"):
                    assert "***@" in json.loads(result.out)["database"] or form != "userinfo", result.out
            cli("--json", "plan", env=clean_env(AGNO_DB_URL=ok), cwd=tmp_path)
            texts.append((f"{form}: outcome", repr(agno_migrate.current(ok)) + json.dumps(
                agno_migrate.current(ok).as_dict(), default=str)))  # fmt: skip
            store = agno_migrate.connect(ok)
            try:
                texts.append(
                    (f"{form}: store", repr(store.target) + str(store.schema_version) + repr(store.get_session("nope")))
                )
            finally:
                store.close()
        for mode in ((), ("--json",), ("-v",)):  # a closed port, or a password no driver can read
            result = cli(*mode, "upgrade", url=broken, cwd=tmp_path)
            assert result.code in (2, 5) and "Traceback" not in result.err, (form, mode, result)
        for call in (agno_migrate.upgrade, lambda url: agno_migrate.connect(url).get_session("nope")):
            with pytest.raises(agno_migrate.AgnoMigrateError) as info:
                call(broken)
            texts.append((f"{form}: exception", f"{info.value}\n{info.value!r}\n{info.value.args!r}"))
    texts += [("log", record.getMessage()) for record in caplog.records]
    texts += [(what, text) for what, text in OUTPUTS]
    leaks = [(what, leaked(text)) for what, text in texts if leaked(text)]
    assert not leaks, leaks[:5]
    assert worked >= {"userinfo"}, worked
    if backend == "postgresql":  # the server checked the password from each place a driver takes it
        assert worked == {"userinfo", "query password", "sslpassword", "passfile"}
    elif backend == "mysql":
        assert worked == {"userinfo", "query password"}
