"""constraints.txt is made by scripts/lock from pyproject.toml: every declared dependency
(runtime and extras) is pinned there at a version its specifier allows. Catches an edit
of pyproject.toml committed without re-running scripts/lock."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from shared.settings import REPO_ROOT


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, version = requirement.split(";", 1)[0].split("==")
            found[canonicalize_name(name)] = Version(version.strip())
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lists = [project["dependencies"], *project.get("optional-dependencies", {}).values()]
    return [Requirement(line) for requirements in lists for line in requirements]


def test_constraints_are_generated_by_scripts_lock() -> None:
    header = (REPO_ROOT / "constraints.txt").read_text().splitlines()[:2]
    assert header[1].strip("# ") == "scripts/lock", header


def test_every_declared_dependency_is_pinned_within_its_specifier() -> None:
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in constraints.txt: run scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} does not satisfy {requirement}: run scripts/lock"
        )
