"""The repository's Dockerfile and .dockerignore read as docker reads them, for the tests that run
the image's commands without docker (tests/test_dockerfile.py, tests/test_deploy_recipes.py)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    flags: tuple[str, ...]  # leading --name=value options (RUN --mount=..., COPY --chown=...)
    rest: str  # the remainder, continuation lines joined

    def exec_form(self) -> list[str]:
        """ENTRYPOINT / CMD in exec (JSON) form; the shell form is refused (signals would not reach it)."""
        value = json.loads(self.rest)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{self.keyword}: {self.rest}"
        return value


def instructions(text: str | None = None) -> list[Instruction]:
    """The Dockerfile's instructions in order (comments and parser directives left out)."""
    text = DOCKERFILE.read_text() if text is None else text
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue  # a comment, also one inside a continued instruction (docker drops it too)
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending.strip(), "the Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        flags = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        result.append(Instruction(keyword.upper(), tuple(flags), rest))
    return result


def entrypoint_and_cmd() -> tuple[list[str], list[str]]:
    """The image's ENTRYPOINT and CMD (the last of each, as docker takes them)."""
    found = {i.keyword: i.exec_form() for i in instructions() if i.keyword in ("ENTRYPOINT", "CMD")}
    return found["ENTRYPOINT"], found["CMD"]


def env_pairs(rest: str) -> dict[str, str]:
    """``ENV A=1 B="two words"`` → {"A": "1", "B": "two words"}."""
    pairs = {}
    for token in shlex.split(rest):
        name, sep, value = token.partition("=")
        assert sep, f"ENV {rest}: use the NAME=value form"
        pairs[name] = value
    return pairs


def _pattern(pattern: str) -> re.Pattern:
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex)


def ignored(relative: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether .dockerignore leaves ``relative`` (a path in the build context) out: the last rule
    matching the path or one of its parent directories decides (``!`` takes it back in)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = not negated
    return excluded


def ignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _pattern(line.lstrip("!").strip("/"))))
    return rules


def context_files(source: str) -> list[Path]:
    """The files of the build context under ``source`` (a COPY source), .dockerignore applied."""
    rules = ignore_rules()
    root = REPO / source
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return [path for path in candidates if not ignored(path.relative_to(REPO).as_posix(), rules)]
