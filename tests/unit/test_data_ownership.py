"""Each service names only its own database and collections (issue 23: one owner per collection).

The table of owners is read from the services' ``storage`` modules: every collection a service
uses is a key of the ``INDEXES`` of one of its storage modules (``registration/storage.py``,
``query/projection/storage.py``, …). A scan of each service's code then fails when it names a
collection another service owns — as a string in ``db["…"]`` / ``get_collection("…")`` /
``db.<name>``, or through a constant imported from ``shared`` — imports another service's
storage module, or names a database in its code instead of reading its own from its settings.
Services never import each other at all (tests/unit/test_architecture.py).
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registration", "query", "deploy_tracker", "audit")
# The database every service shared before issue 23: no service may name it any more.
RETIRED_DATABASES = {"model_registry"}


def package(service: str) -> Path:
    return ROOT / "services" / service.replace("_", "-") / "src" / service


def module_name(service: str, path: Path) -> str:
    relative = path.relative_to(package(service)).with_suffix("")
    return ".".join((service, *relative.parts)).removesuffix(".__init__")


def storage_modules(service: str) -> list[str]:
    """The service's modules that declare its collections: each ``storage.py`` of its package."""
    return sorted(module_name(service, path) for path in package(service).rglob("storage.py"))


def owned_collections(service: str) -> set[str]:
    """The collections ``service`` declares (the keys of its storage modules' ``INDEXES``)."""
    owned: set[str] = set()
    for name in storage_modules(service):
        owned |= set(importlib.import_module(name).INDEXES)
    return owned


OWNERS = {service: owned_collections(service) for service in SERVICES}


@dataclass(frozen=True)
class Finding:
    """One place where a service names what it does not own."""

    path: str
    line: int
    name: str  # the collection or database named
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def foreign(service: str) -> set[str]:
    """Collections other services own that ``service`` does not (a name two owners share is each one's own)."""
    others = set().union(*(collections for owner, collections in OWNERS.items() if owner != service))
    return others - OWNERS[service]


def database_names(service: str) -> set[str]:
    """Database names ``service``'s code may not spell out: the other services' and the retired shared one."""
    return {other for other in SERVICES if other != service} | RETIRED_DATABASES


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_database(node: ast.AST) -> bool:
    """An expression that reads like a database handle: ``db``, ``self.db``, ``service.db``, ``…database``."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name == "db" or name.endswith(("_db", "database"))


def scan(service: str, source: str, where: str) -> list[Finding]:
    """What ``source`` (the file ``where`` of ``service``'s package) names that belongs to another service."""
    tree = ast.parse(source)
    theirs, databases = foreign(service), database_names(service)
    found: list[Finding] = []

    def note(node: ast.AST, name: str, what: str) -> None:
        found.append(Finding(where, getattr(node, "lineno", 0), name, what))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            root = node.module.split(".")[0]
            if root in SERVICES and root != service and node.module.endswith("storage"):
                note(node, node.module, f"imports {node.module}, another service's storage")
            if root == "shared":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    value = getattr(module, alias.name, None)
                    if isinstance(value, str) and value in theirs:
                        note(
                            node,
                            value,
                            f"imports {alias.name} ({value!r}, another service's collection) from {node.module}",
                        )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in SERVICES and root != service and alias.name.endswith("storage"):
                    note(node, alias.name, f"imports {alias.name}, another service's storage")
        elif isinstance(node, ast.Subscript):
            key = _string(node.slice)
            if key in theirs and _is_database(node.value):
                note(node, key, f"names {key!r}, another service's collection")
            if key in databases:
                note(node, key, f"names the database {key!r}")
        elif isinstance(node, ast.Attribute) and node.attr in theirs and _is_database(node.value):
            note(node, node.attr, f"names {node.attr!r}, another service's collection")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in {"get_collection", "get_database"} and node.args:
                key = _string(node.args[0])
                if key in theirs or key in databases:
                    note(node, key, f"{node.func.attr}({key!r}): not its own")
        elif isinstance(node, ast.Constant) and node.value in RETIRED_DATABASES:
            note(node, node.value, f"names the retired shared database {node.value!r}")
    return found


def findings(service: str) -> list[Finding]:
    """What ``service``'s code names that it does not own."""
    paths = sorted(package(service).rglob("*.py"))
    return [finding for path in paths for finding in scan(service, path.read_text(), str(path.relative_to(ROOT)))]


# --- the table ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_declares_its_collections_in_its_own_storage_modules(service: str) -> None:
    assert storage_modules(service), f"{service} has no storage module"
    assert OWNERS[service], f"{service} declares no collection"


def test_the_table_of_owners_holds_what_each_service_keeps() -> None:
    assert {"models", "model_versions", "outbox", "shares", "api_keys"} <= OWNERS["registration"]
    assert {"deployments", "deploy_outbox", "webhooks", "webhook_deliveries"} <= OWNERS["deploy_tracker"]
    assert {"audit_log", "audit_heads"} <= OWNERS["audit"]
    assert "console_sessions" in OWNERS["query"]


# --- the scan -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_names_no_database_or_collection_it_does_not_own(service: str) -> None:
    assert not findings(service), "\n".join(map(str, findings(service)))


# --- the scan sees what it must (it would pass vacuously otherwise) -------------------------


def names(service: str, code: str) -> list[str]:
    return [finding.what for finding in scan(service, code, "probe.py")]


@pytest.mark.parametrize(
    ("service", "code"),
    [
        ("query", 'async def f(db):\n    return await db["model_versions"].find_one({})\n'),
        ("deploy_tracker", "async def f(self):\n    await self.db.models.update_one({}, {})\n"),
        ("audit", 'def f(service):\n    return service.database.get_collection("api_keys")\n'),
        ("query", "from shared.chassis.mongo import API_KEYS\n"),
        ("query", "from registration.storage import MODELS\n"),
        ("registration", 'def f(client):\n    return client["query"]\n'),
        ("registration", 'NAME = "model_registry"\n'),
    ],
)
def test_the_scan_finds_a_foreign_name(service: str, code: str) -> None:
    assert names(service, code)


def test_the_scan_leaves_a_services_own_names_and_documents_fields_alone() -> None:
    own = 'async def f(db, doc):\n    await db["console_sessions"].find_one({})\n    return doc["deployments"]\n'
    assert names("query", own) == []
