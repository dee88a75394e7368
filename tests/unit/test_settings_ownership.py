"""Settings by owner: a shared setting is one at least two services read; the rest are a service's own.

A service reads a field when its own code does (``settings.<field>``), or when it names a function
or class of the shared package that reads it, directly or through other functions and classes of
that package (``service_app`` → ``build_http_app`` → ``LagMonitor``): by name, so an
over-estimate, never an under-estimate, of who reads what.
"""

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from audit.config import AuditSettings
from deploy_tracker.config import DeployTrackerSettings
from query.config import QuerySettings
from registration.config import RegistrationSettings
from shared.chassis.settings import CommonSettings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "registration": RegistrationSettings,
    "query": QuerySettings,
    "deploy-tracker": DeployTrackerSettings,
    "audit": AuditSettings,
}
# Fields of CommonSettings fewer than two services read, each with why it is shared all the same.
SHARED_ANYWAY: dict[str, str] = {}


def names(tree: ast.AST) -> set[str]:
    """Every name a piece of code uses: variables, and attributes (``settings.topic_events`` → ``topic_events``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found


def modules(folder: Path) -> Iterator[ast.Module]:
    for path in sorted(folder.rglob("*.py")):
        yield ast.parse(path.read_text(), str(path))


@cache
def shared_definitions() -> dict[str, set[str]]:
    """The names each top-level function and class of the shared package uses (settings classes aside)."""
    uses: dict[str, set[str]] = {}
    for module in modules(ROOT / "shared" / "src" / "shared"):
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        for node in (node for node in module.body if isinstance(node, kinds)):
            if not node.name.endswith("Settings"):
                uses.setdefault(node.name, set()).update(names(node))
    return uses


@cache
def used_by(service: str) -> frozenset[str]:
    """The names a service's code uses, and those of every shared function or class it reaches."""
    shared = shared_definitions()
    used = set().union(*map(names, modules(ROOT / "services" / service / "src")))
    todo = [name for name in used if name in shared]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += [other for other in shared[name] if other in shared]
    return frozenset(used.union(*(shared[name] for name in reached)))


def readers(field: str) -> set[str]:
    return {service for service in SETTINGS if field in used_by(service)}


@pytest.mark.parametrize("field", sorted(CommonSettings.model_fields))
def test_a_shared_setting_is_read_by_at_least_two_services(field: str) -> None:
    if field in SHARED_ANYWAY:
        return
    found = readers(field)
    assert len(found) >= 2, (
        f"CommonSettings.{field} is read by {sorted(found) or 'no service'}: move it to that service's settings"
        " (keeping its variable name as an alias), or say in SHARED_ANYWAY why every service has it"
    )


def test_every_exception_is_still_a_shared_setting() -> None:
    assert set(SHARED_ANYWAY) <= set(CommonSettings.model_fields)


@pytest.mark.parametrize(
    ("field", "owner"),
    [
        ("artifact_schemes", "registration"),
        ("key_verifier_sealing_keys", "registration"),
        ("console_session_hours", "query"),
        ("webhook_delivery_retention_days", "deploy-tracker"),
        ("access_retention_days", "audit"),
    ],
)
def test_the_check_tells_services_apart(field: str, owner: str) -> None:
    assert readers(field) == {owner}


def test_the_check_follows_the_shared_package() -> None:
    # Read in shared.chassis.consuming (batch_subscriber) for the services with batch consumers: not the query.
    assert readers("consumer_max_attempts") == {"registration", "deploy-tracker", "audit"}
