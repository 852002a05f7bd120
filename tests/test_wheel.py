"""The built wheel carries the revision scripts and the store's check in C (``agno_migrate._plain``, built
where a C compiler is there, as here): installed non-editable into a fresh virtual environment, away from
the repository, it runs every revision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sh(*cmd, cwd=None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def test_wheel_in_a_fresh_venv_runs_every_revision(tmp_path):
    dist = tmp_path / "dist"
    sh(sys.executable, "-m", "build", "--wheel", "--outdir", dist, REPO)
    (wheel,) = dist.glob("agno_migrate-*.whl")
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    sh(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel)
    work = tmp_path / "work"
    work.mkdir()
    location = sh(venv / "bin" / "python", "-c", "import agno_migrate.versions as v; print(v.__file__)", cwd=work)
    assert str(venv) in location
    in_c = sh(venv / "bin" / "python", "-c", "from agno_migrate import storable; print(storable.PLAIN_IN_C)", cwd=work)
    assert in_c.strip() == "True"
    scripts = sorted(p.name for p in (Path(location.strip()).parent / "sql").glob("*.py"))
    assert len(scripts) == 5, scripts
    cli = venv / "bin" / "agno-migrate"
    url = f"sqlite:///{work / 'agno.db'}"
    assert "applied 2.0.0" in sh(cli, "--db-url", url, "upgrade", "--to", "2.0.0", cwd=work)
    assert "applied 2.3.0, 2.5.0, 3.0.0, 3.0.1" in sh(cli, "--db-url", url, "upgrade", cwd=work)
    assert "at head 3.0.1" in sh(cli, "--db-url", url, "check", cwd=work)
