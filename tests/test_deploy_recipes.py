"""docs/deploy.md's recipes, run: each block is read from the document by the ``<!-- recipe: NAME -->``
marker before it (so the document and the test cannot drift), shell recipes run with bash against
real databases (``AGNO_DB_URL``) with ``agno-migrate`` on PATH (a shim for ``python -m agno_migrate``
of this checkout), YAML recipes are parsed and their container's command line run the same way
(the image's ENTRYPOINT from the Dockerfile before the container's ``args``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fixture_bytes, password_leaks
from dockerfile import REPO, entrypoint_and_cmd
from test_concurrency import version_rows

DOC = REPO / "docs" / "deploy.md"
UPGRADED_FROM_2_0_0 = [("2.0.0", "detect"), ("2.3.0", "upgrade"), ("2.5.0", "upgrade"), ("3.0.0", "upgrade"),
                       ("3.0.1", "upgrade")]  # fmt: skip
REPLICAS = 4


def recipe(name: str) -> tuple[str, str]:
    """``(language, text)`` of the fenced block right after ``<!-- recipe: name -->`` in docs/deploy.md."""
    found = re.findall(rf"<!-- recipe: {re.escape(name)} -->\n+```(\w+)\n(.*?)^```$", DOC.read_text(), re.M | re.S)
    assert len(found) == 1, f"docs/deploy.md: expected one block after <!-- recipe: {name} -->, found {len(found)}"
    return found[0]


def load_yaml(text: str) -> list:
    """The YAML documents of ``text``: with PyYAML where it is installed (the test extra), else with
    the PyYAML of the reference Agno environment (tests/agno_side/env.py pins it)."""
    try:
        import yaml
    except ImportError:
        from agno_side.env import agno_python, clean_env

        script = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))"
        done = subprocess.run([str(agno_python()), "-c", script], input=text, capture_output=True, text=True,
                              env=clean_env(), timeout=120)  # fmt: skip
        assert done.returncode == 0, f"not valid YAML: {done.stderr[-1000:]}"
        return json.loads(done.stdout)
    return list(yaml.safe_load_all(text))


@pytest.fixture
def shell(tmp_path):
    """``shell(text, *args, cwd=, **env)``: run ``text`` with bash (``$@`` = args), ``agno-migrate`` on
    PATH running this checkout; returns the process (started when ``wait=False``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "agno-migrate"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m agno_migrate "$@"\n')
    shim.chmod(0o755)

    def environ(env: dict) -> dict:
        base = {k: v for k, v in os.environ.items() if k not in ("AGNO_DB_URL", "PYTHONPATH", "AGNO_MIGRATE_DEBUG")}
        return {**base, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}

    def run(text: str, *args: str, cwd: Path = tmp_path, wait: bool = True, **env: str):
        proc = subprocess.Popen(["bash", "-c", text, "recipe", *args], cwd=cwd, env=environ(env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        return finished(proc) if wait else proc

    run.environ = environ
    return run


def finished(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    assert not password_leaks(out + err)
    assert "Traceback" not in out + err, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def at_head(shell, url: str) -> bool:
    return shell("agno-migrate check", AGNO_DB_URL=url).returncode == 0


def container_command(container: dict, compose: bool = False) -> list[str]:
    """The command line a container of the image runs. Kubernetes: ``command`` replaces the ENTRYPOINT,
    ``args`` the CMD; docker-compose: ``entrypoint`` replaces the ENTRYPOINT, ``command`` the CMD (a
    replaced ENTRYPOINT drops the CMD, in both)."""
    entrypoint, cmd = entrypoint_and_cmd()
    own_entrypoint, own_args = ("entrypoint", "command") if compose else ("command", "args")
    if own_entrypoint in container:
        entrypoint, cmd = container[own_entrypoint], []
    return entrypoint + container.get(own_args, cmd)


def run_container(shell, container: dict, url: str, compose: bool = False) -> subprocess.CompletedProcess:
    names = {e["name"] for e in container.get("env", [])} | set(container.get("environment", {}))
    assert "AGNO_DB_URL" in names, f"{container.get('name', container.get('image'))} sets no AGNO_DB_URL"
    return shell('exec "$@"', *container_command(container, compose), AGNO_DB_URL=url)


# --- 1. CI -----------------------------------------------------------------------------------------


def test_ci_check_fails_while_the_schema_is_behind(shell, new_database):
    lang, script = recipe("ci-check")
    assert lang == "bash"
    (workflow,) = load_yaml(recipe("ci-check-workflow")[1])
    (job,) = workflow["jobs"].values()
    step = job["steps"][-1]
    assert step["env"]["AGNO_DB_URL"] == "${{ secrets.AGNO_DB_URL }}"
    assert step["run"] == script, "the workflow's step and the shell recipe differ"

    behind = new_database("postgresql")
    behind.load("2.0.0")
    done = shell(script, AGNO_DB_URL=behind.url)
    assert done.returncode == 1, done.stderr
    assert "2.0.0" in done.stderr  # check's one line names the version found
    assert "2.3.0" in done.stdout and "3.0.1" in done.stdout  # and the plan is in the log
    assert not at_head(shell, behind.url)  # nothing changed

    head = new_database("sqlite")
    assert shell("agno-migrate upgrade", AGNO_DB_URL=head.url).returncode == 0
    done = shell(script, AGNO_DB_URL=head.url)
    assert done.returncode == 0, done.stderr
    assert "at head" in done.stdout


# --- 2. deploy step from several replicas ----------------------------------------------------------


def test_deploy_step_from_four_replicas_at_once_upgrades_once(shell, new_database, tmp_path):
    lang, script = recipe("deploy-upgrade")
    assert lang == "bash"
    db = new_database("postgresql")
    db.load("2.0.0")
    # each replica's "application": write a file named for it once the step lets it start
    app = 'agno-migrate check && touch "started-$1"'
    replicas = [
        shell(script, "bash", "-c", app, "app", str(n), AGNO_DB_URL=db.url, wait=False) for n in range(REPLICAS)
    ]
    results = [finished(p) for p in replicas]
    assert [r.returncode for r in results] == [0] * REPLICAS, [r.stderr for r in results]
    assert sum("upgraded agno_sessions from 2.0.0" in r.stdout for r in results) == 1
    assert sum("already at 3.0.1" in r.stdout for r in results) == REPLICAS - 1
    assert version_rows(db.url) == UPGRADED_FROM_2_0_0  # each step ran (and was recorded) once
    assert sorted(p.name for p in tmp_path.glob("started-*")) == [f"started-{n}" for n in range(REPLICAS)]

    # the wait for the lock is bounded: a replica that cannot take it in time fails (exit 6), starting nothing
    import sqlalchemy as sa

    from agno_migrate.migrate.sql.locks import migration_lock
    from agno_migrate.target import Target

    target = Target.from_url(db.url)
    engine = sa.create_engine(target.driver_url)
    try:
        with engine.connect() as conn, migration_lock(conn, target):
            late = shell(script.replace("--lock-timeout 600", "--lock-timeout 1"), "touch", "late", AGNO_DB_URL=db.url)
    finally:
        engine.dispose()
    assert late.returncode == 6, late.stderr
    assert not (tmp_path / "late").exists()


# --- 3. Kubernetes ---------------------------------------------------------------------------------


def test_kubernetes_job_and_init_container_upgrade_a_real_database(shell, new_database):
    (job,) = load_yaml(recipe("kubernetes-job")[1])
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert "agno-migrate" in container["image"]
    db = new_database("postgresql")
    db.load("2.0.0")
    done = run_container(shell, container, db.url)
    assert done.returncode == 0, done.stderr
    assert "applied 2.3.0, 2.5.0, 3.0.0, 3.0.1" in done.stdout
    assert at_head(shell, db.url)

    (deployment,) = load_yaml(recipe("kubernetes-init-container")[1])
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert "agno-migrate" in init["image"]
    assert [e["valueFrom"] for e in init["env"]] == [e["valueFrom"] for e in pod["containers"][0]["env"]]
    sqlite = new_database("sqlite")
    sqlite.load("2.5.0")
    done = run_container(shell, init, sqlite.url)
    assert done.returncode == 0, done.stderr
    assert at_head(shell, sqlite.url)
    done = run_container(shell, init, sqlite.url)  # the next pod: nothing to do
    assert done.returncode == 0 and "already at 3.0.1" in done.stdout, done.stdout


# --- 4. docker-compose -----------------------------------------------------------------------------


def test_docker_compose_migrate_service_runs_before_the_app(shell, new_database):
    (compose,) = load_yaml(recipe("docker-compose")[1])
    services = compose["services"]
    assert services["app"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["migrate"]["build"] == "."  # this repository's Dockerfile
    assert services["migrate"]["environment"]["AGNO_DB_URL"] == services["app"]["environment"]["AGNO_DB_URL"]
    db = new_database("postgresql")
    db.load("2.3.0")
    done = run_container(shell, services["migrate"], db.url, compose=True)
    assert done.returncode == 0, done.stderr
    assert at_head(shell, db.url)


# --- 5. auto_upgrade_schema ------------------------------------------------------------------------


def test_auto_upgrade_snippet_takes_an_old_database_to_head(shell, tmp_path):
    lang, snippet = recipe("auto-upgrade")
    assert lang == "python"
    (tmp_path / "agno.db").write_bytes(fixture_bytes("2.0.0", "sqlite.db"))
    url = f"sqlite:///{tmp_path / 'agno.db'}"
    assert shell("agno-migrate check", AGNO_DB_URL=url).returncode == 1
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env={**shell.environ({}), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    total = int(done.stdout.split()[0])
    assert total > 0  # the fixture's sessions, read after the upgrade
    assert at_head(shell, url)


# --- 6. SQLite -> PostgreSQL -----------------------------------------------------------------------


def test_sqlite_to_postgresql_with_copy(shell, new_database, tmp_path):
    lang, script = recipe("sqlite-to-postgresql")
    assert lang == "bash"
    (tmp_path / "app.db").write_bytes(fixture_bytes("2.5.0", "sqlite.db"))
    before = (tmp_path / "app.db").read_bytes()
    target = new_database("postgresql")
    assert shell(script).returncode != 0  # no NEW_DB_URL: refused before anything runs
    done = shell(script, NEW_DB_URL=target.url)
    assert done.returncode == 0, done.stderr
    assert at_head(shell, target.url)
    assert (tmp_path / "app.db").read_bytes() == before  # the source is only read
