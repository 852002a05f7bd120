"""The Dockerfile, built without docker (no registry for base images here): its instructions are
read as docker reads them, its install commands run in a fresh Python 3.11 virtual environment
(the base image's Python) over the build context its COPY lines and .dockerignore give, and its
ENTRYPOINT + CMD run against real databases, checking the exit codes.

The build takes about a minute (pip installs the checkout with every driver; pip's wheel cache is
reused, as the Dockerfile's cache mount does), so it is done once per test session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import password_leaks
from dockerfile import REPO, context_files, entrypoint_and_cmd, env_pairs, instructions

BASE_IMAGE = "python:3.11-slim"


@dataclass
class Image:
    """What the Dockerfile built: ``root`` stands for the image's file system, ``venv`` for its Python."""

    venv: Path
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    installs: list[str] = field(default_factory=list)  # the RUN commands run (pip install)
    other_runs: list[str] = field(default_factory=list)  # the RUN commands that act on the system

    def path(self, where: str) -> Path:
        absolute = where if where.startswith("/") else f"{self.workdir.rstrip('/')}/{where}"
        return self.root / absolute.lstrip("/")

    def environ(self, **extra: str) -> dict[str, str]:
        """The container's environment: the image's ENV over a clean one (no PYTHONPATH, no AGNO_DB_URL)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AGNO_DB_URL")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.env)
        env.update(extra)
        return env

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess:
        """``docker run image ARGV...`` (no ARGV: the CMD) with ``env`` as ``-e`` options."""
        entrypoint, cmd = entrypoint_and_cmd()
        command = entrypoint + (list(argv) or cmd)
        command[0] = shutil.which(command[0], path=str(self.venv / "bin"))  # the image's, never this machine's
        assert command[0], f"{entrypoint[0]} is not installed in the image"
        done = subprocess.run(command, cwd=self.path("."), env=self.environ(**env), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert not password_leaks(done.stdout + done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        return done


def build(tmp: Path) -> Image:
    """Carry out the Dockerfile's instructions into ``tmp``."""
    steps = instructions()
    assert steps[0].keyword == "FROM" and steps[0].rest == BASE_IMAGE, steps[0]
    python = shutil.which("python3.11")
    assert python, "the base image's Python 3.11 (python3.11) is needed to build the image's environment"
    image = Image(venv=tmp / "venv", root=tmp / "root")
    image.root.mkdir()
    subprocess.run([python, "-m", "venv", image.venv], check=True, timeout=300)
    for step in steps[1:]:
        if step.keyword == "ENV":
            image.env.update(env_pairs(step.rest))
        elif step.keyword == "WORKDIR":
            image.workdir = step.rest if step.rest.startswith("/") else f"{image.workdir}/{step.rest}"
            image.path(".").mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            copy(image, step.rest.split())
        elif step.keyword == "RUN":
            if "pip install" in step.rest:
                install(image, step.rest, step.flags)
            else:
                image.other_runs.append(step.rest)
        elif step.keyword == "USER":
            image.user = step.rest
        else:
            assert step.keyword in ("ENTRYPOINT", "CMD"), f"{step.keyword}: not expected in this Dockerfile"
    return image


def copy(image: Image, words: list[str]) -> None:
    *sources, dest = words
    into_dir = dest.endswith("/") or len(sources) > 1
    for source in sources:
        source_root = REPO / source
        for file in context_files(source):
            if source_root.is_file():
                target = image.path(dest) / file.name if into_dir else image.path(dest)
            else:
                target = image.path(dest) / file.relative_to(source_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)


def install(image: Image, command: str, flags: tuple[str, ...]) -> None:
    # run on this machine: an absolute path would reach outside the image's stand-in
    assert not re.search(r"(^|\s)/", command), f"RUN {command}: an install command with an absolute path"
    assert all(f.startswith("--mount=type=cache") for f in flags), flags  # a cache mount: pip's own cache here
    done = subprocess.run(["bash", "-euc", command], cwd=image.path("."), env=image.environ(), capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, f"RUN {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    image.installs.append(command)


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> Image:
    return build(tmp_path_factory.mktemp("image"))


def test_the_dockerfile_is_a_small_non_root_image_of_the_cli():
    steps = instructions()
    keywords = [s.keyword for s in steps]
    assert steps[0].rest == BASE_IMAGE
    assert entrypoint_and_cmd() == (["agno-migrate"], ["check"])
    # the install names the extra that holds every backend's driver
    installs = [s.rest for s in steps if s.keyword == "RUN" and "pip install" in s.rest]
    assert installs == ['pip install ".[all]"']
    pyproject = (REPO / "pyproject.toml").read_text()
    extras = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    others = set(re.findall(r"^(\w+) = ", extras, re.M)) - {"all", "test"}
    (listed,) = re.findall(r'^all = \["agno-migrate\[([\w,]+)\]"\]', extras, re.M)
    assert set(listed.split(",")) == others and {"postgres", "mysql", "mongo"} <= others
    # a user of its own, created before USER names it, after the install
    user_index = keywords.index("USER")
    user = steps[user_index].rest
    assert user not in ("root", "0") and not user.startswith("0:")
    creates = [s for s in steps[:user_index] if s.keyword == "RUN" and re.search(rf"useradd\b.*\b{user}\b", s.rest)]
    assert creates, f"no RUN before USER creates the user {user}"
    assert max(i for i, s in enumerate(steps) if s.rest in installs) < user_index
    # the working directory it runs in is its own (a SQLite file may be created there)
    workdir = [s.rest for s in steps[user_index:] if s.keyword == "WORKDIR"][-1]
    assert re.search(rf"chown {user} {re.escape(workdir)}\b", creates[0].rest)
    # the build context holds the package, its revision scripts and the metadata, no development symlink
    copied = {p.relative_to(REPO).as_posix() for s in ("agno_migrate", "versions") for p in context_files(s)}
    assert {"agno_migrate/cli.py", "agno_migrate/__main__.py"} <= copied
    assert len([c for c in copied if c.startswith("versions/sql/")]) == 5
    assert not any(c.startswith("agno_migrate/versions") or "__pycache__" in c for c in copied)


def test_the_image_checks_and_upgrades_real_databases(image, new_database):
    # the installed package is the image's, not this checkout, and every backend's driver is there
    where = subprocess.run(
        ["python", "-c", "import psycopg, pymysql, pymongo, orjson, agno_migrate; print(agno_migrate.__file__)"],
        cwd=image.path("."), env=image.environ(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(image.venv)), where.stdout

    # no arguments: CMD check, on the default SQLite file in the working directory (none yet: behind)
    assert image.run().returncode == 1
    assert image.run("upgrade").returncode == 0
    assert (image.path(".") / "agno.db").exists()
    assert image.run().returncode == 0

    # AGNO_DB_URL at a SQLite database written by Agno 2.0.0
    sqlite = new_database("sqlite")
    sqlite.load("2.0.0")
    assert image.run(AGNO_DB_URL=sqlite.url).returncode == 1
    assert image.run("upgrade", AGNO_DB_URL=sqlite.url).returncode == 0
    assert image.run(AGNO_DB_URL=sqlite.url).returncode == 0

    # --db-url PostgreSQL (psycopg) and MariaDB (PyMySQL)
    pg = new_database("postgresql")
    pg.load("2.0.0")
    behind = image.run("--db-url", pg.url, "check")
    assert behind.returncode == 1 and "2.0.0" in behind.stderr, behind.stderr
    upgraded = image.run("--db-url", pg.url, "upgrade")
    assert upgraded.returncode == 0 and "applied 2.3.0, 2.5.0, 3.0.0, 3.0.1" in upgraded.stdout, upgraded.stdout
    assert image.run("--db-url", pg.url, "check").returncode == 0
    mysql = new_database("mysql")
    assert image.run("--db-url", mysql.url, "upgrade").returncode == 0
    sqlite_behind = new_database("sqlite")
    sqlite_behind.load("2.5.0")
    assert image.run("--db-url", mysql.url, "check").returncode == 0

    # python -m agno_migrate is the same command, with the same exit codes
    for url, code in (
        (pg.url, 0),
        (sqlite_behind.url, 1),
        ("nosuch://x", 2),
        ("postgresql://postgres@127.0.0.1:1/x", 5),
    ):
        done = subprocess.run(["python", "-m", "agno_migrate", "--db-url", url, "check"], cwd=image.path("."),
                              env=image.environ(), capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == code, (url, done.stderr)
