"""Each package imports only what its own pyproject declares: its audience installs exactly that.

A package that imports a library it does not declare works inside the workspace (another member
brings it) and breaks where it is installed alone; the client's extras (Kafka, MCP, signing) may be
imported only by the modules that need them, which nothing imports at start-up.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.unit.test_architecture import imported_roots

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# Workspace member (its folder) → the import package(s) it ships.
PACKAGES = {
    "contract": ["registry_contract"],
    "client": ["registry_client"],
    "shared": ["shared"],
    "services/registration": ["registration"],
    "services/query": ["query"],
    "services/audit": ["audit"],
    "services/deploy-tracker": ["deploy_tracker"],
    "deploy/local": ["registry_cli"],
}
# The client's extras: only these modules may import their libraries.
EXTRA_MODULES = {
    "kafka": {"registry_client/kafka.py", "registry_client/outcomes.py"},
    "mcp": {"registry_client/mcp/tools.py"},
    "audit": {"registry_client/audit_keys.py"},
    "signing": {"registry_client/signing.py"},
}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def distribution_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared(member: str) -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
    extras = {
        name: {distribution_name(r) for r in reqs} for name, reqs in project.get("optional-dependencies", {}).items()
    }
    return {distribution_name(r) for r in project.get("dependencies", [])}, extras


def providers() -> dict[str, set[str]]:
    """Import name → the distributions that provide it (lower case), including the workspace's own."""
    found = {
        name: {d.lower().replace("_", "-") for d in dists}
        for name, dists in importlib.metadata.packages_distributions().items()
    }
    for member, packages in PACKAGES.items():
        own = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]["name"]
        for package in packages:
            found.setdefault(package, set()).add(own)
    return found


def imports_by_module(member: str) -> dict[str, set[str]]:
    """Relative module path (``registry_client/kafka.py``) → the top-level names it imports."""
    found: dict[str, set[str]] = {}
    source = ROOT / member / "src"
    for path in source.rglob("*.py"):
        found[str(path.relative_to(source))] = imported_roots(path) - STDLIB
    return found


def undeclared(member: str) -> list[str]:
    dependencies, extras = declared(member)
    own = set(PACKAGES[member])
    by_name = providers()
    problems = []
    for module, roots in sorted(imports_by_module(member).items()):
        allowed = set(dependencies)
        for extra, modules in EXTRA_MODULES.items():
            if module in modules:
                allowed |= extras.get(extra, set())
        for root in sorted(roots - own):
            if not by_name.get(root, set()) & allowed:
                problems.append(f"{module} imports {root}, which its pyproject does not declare")
    return problems


@pytest.mark.parametrize("member", sorted(PACKAGES))
def test_a_package_imports_only_what_it_declares(member: str) -> None:
    assert undeclared(member) == []


def test_the_check_sees_an_undeclared_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pkg" / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text('[project]\nname = "pkg"\ndependencies = ["httpx>=0.28"]\n')
    (tmp_path / "pkg" / "src" / "pkg" / "a.py").write_text("import httpx\nimport pymongo\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", {"pkg": ["pkg"]})
    assert undeclared("pkg") == ["pkg/a.py imports pymongo, which its pyproject does not declare"]
