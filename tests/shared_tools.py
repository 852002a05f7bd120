"""An extra opinion, never the only one: where the shared tools checkout (../shared/tools, or
$AGNO_MIGRATE_SHARED/tools) sits beside this one, the `agno` tests also run its verify_with_agno.sh
after the project's own verifier (tests/agno_side/agno_verify.py) has passed. Without that checkout
nothing is skipped: the project's verifier has done the check."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SHARED_TOOLS = Path(os.environ.get("AGNO_MIGRATE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "tools"


def cross_check(db: str, expected: Path, *options: str) -> str | None:
    """verify_with_agno.sh's last line on ``db`` (asserted to report no mismatch), or None without the tools."""
    script = SHARED_TOOLS / "verify_with_agno.sh"
    if not script.exists():
        return None
    done = subprocess.run(
        ["bash", str(script), "--db", db, "--expected", str(expected), *options],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0 and last.endswith(" 0 mismatches"), done.stdout[-3000:] + done.stderr[-2000:]
    return last
