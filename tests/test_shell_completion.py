"""Shell completion (click's own, README "Shell completion"): the console script's name gives the
variable ``_AGNO_MIGRATE_COMPLETE``; the bash script it prints loads in a real bash and completes
commands and options."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "agno-migrate")


def complete(shell_kind: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "AGNO_DB_URL"}
    environ.update(env, _AGNO_MIGRATE_COMPLETE=shell_kind)
    return subprocess.run([CLI], env=environ, capture_output=True, text=True, timeout=60)


def test_the_console_script_is_named_for_the_completion_variable():
    scripts = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    assert re.findall(r"^([\w-]+) = ", scripts, re.M) == ["agno-migrate"]
    # click's variable: _{PROG_NAME}_COMPLETE with - as _, upper case
    assert "_agno-migrate_COMPLETE".replace("-", "_").upper() == "_AGNO_MIGRATE_COMPLETE"


@pytest.mark.parametrize("shell_kind", ["bash_source", "zsh_source", "fish_source"])
def test_a_completion_script_for_each_shell(shell_kind):
    done = complete(shell_kind)
    assert done.returncode == 0, done.stderr
    assert "_AGNO_MIGRATE_COMPLETE" in done.stdout and "agno-migrate" in done.stdout


def test_bash_complete_offers_upgrade_for_up():
    done = complete("bash_complete", COMP_WORDS="agno-migrate up", COMP_CWORD="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plain,upgrade"]
    # after the global options too, and the command's options
    done = complete("bash_complete", COMP_WORDS="agno-migrate --db-url sqlite:///x.db up", COMP_CWORD="3")
    assert done.stdout.splitlines() == ["plain,upgrade"]
    done = complete("bash_complete", COMP_WORDS="agno-migrate upgrade --dr", COMP_CWORD="2")
    assert done.stdout.splitlines() == ["plain,--dry-run"]


def test_the_bash_script_completes_in_bash(tmp_path):
    """The README's line, in a real bash: the script registers the function, which fills COMPREPLY."""
    bin_dir = Path(CLI).parent
    readme_line = 'eval "$(_AGNO_MIGRATE_COMPLETE=bash_source agno-migrate)"'
    assert readme_line in (REPO / "README.md").read_text()
    script = f"""
    {readme_line}
    complete -p agno-migrate
    COMP_WORDS=(agno-migrate up); COMP_CWORD=1
    _agno_migrate_completion agno-migrate
    echo "reply: ${{COMPREPLY[*]}}"
    COMP_WORDS=(agno-migrate c); COMP_CWORD=1; COMPREPLY=()
    _agno_migrate_completion agno-migrate
    echo "reply: ${{COMPREPLY[*]}}"
    """
    env = {k: v for k, v in os.environ.items() if k != "AGNO_DB_URL"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "-F _agno_migrate_completion agno-migrate" in lines[0]
    assert lines[1:] == ["reply: upgrade", "reply: check copy current"]
