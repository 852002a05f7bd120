"""Secrets: no command, error, log line or --json output shows the password of the URL.

Every PostgreSQL and MariaDB URL of the reliability suite carries support.SECRET, and every
command and child process of the session records what it printed (support.OUTPUTS). This module
runs last (pytest runs the files in name order): it adds every command and the output modes on
PostgreSQL and MariaDB, then greps everything the session printed for the password, plain or URL-quoted.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from .support import HEAD, OUTPUTS, SECRET, SECRET_QUOTED, clean_env, cli, note_case


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


def test_no_output_of_the_suite_shows_the_password():
    everything = "\n".join(text for _, text in OUTPUTS)
    assert len(OUTPUTS) >= 50, f"only {len(OUTPUTS)} outputs recorded"
    for secret in (SECRET, SECRET_QUOTED, SECRET.split(":")[1]):
        leaks = [what for what, text in OUTPUTS if secret in text]
        assert not leaks, f"the password shows in the output of: {leaks[:5]}"
    assert "***" in everything
