"""Compose and Kubernetes give each service its own database and its own MongoDB user (issue 23)."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
PREFIXES = {"registration": "REGISTRATION", "query": "QUERY", "deploy-tracker": "DEPLOY_TRACKER", "audit": "AUDIT"}


def user_of(uri: str) -> str:
    """The user a connection string names (its password is an unexpanded ``${…}``, which urlsplit cannot read)."""
    found = re.match(r"mongodb://([^:@/]+):", uri)
    assert found, uri
    return found.group(1)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return loaded


def test_compose_connects_each_service_as_its_own_user_to_its_own_database() -> None:
    services = compose()["services"]
    mongo = services["mongo"]["environment"]
    for name, prefix in PREFIXES.items():
        environment = services[name]["environment"]
        assert "MONGODB_DATABASE" not in environment  # no variable points every service at one database
        assert user_of(environment["MONGODB_URI"]) == name
        assert f"REGISTRY_MONGO_{prefix}_PASSWORD" in environment["MONGODB_URI"]
        # The user's role is made on the very database the service is told to use.
        assert environment[f"{prefix}_MONGODB_DATABASE"] == mongo[f"{prefix}_MONGODB_DATABASE"]
        assert (
            mongo[f"{prefix}_MONGODB_PASSWORD"]
            == f"${{REGISTRY_MONGO_{prefix}_PASSWORD:?set REGISTRY_MONGO_{prefix}_PASSWORD}}"
        )
    init = services["init"]["environment"]  # it stores the bootstrap key: registration's
    assert user_of(init["MONGODB_URI"]) == "registration"
    assert "--keyFile" in services["mongo"]["command"]  # a replica set with authentication
    assert "./mongo/users.js:/docker-entrypoint-initdb.d/users.js:ro" in services["mongo"]["volumes"]


def test_the_users_script_grants_each_service_read_write_on_its_own_database_only() -> None:
    script = (ROOT / "deploy" / "mongo" / "users.js").read_text()
    assert re.search(r'roles: \[\{ role: "readWrite", db: database \}\]', script)
    assert set(re.findall(r'^\s+"?([a-z-]+)"?: "([A-Z_]+)",$', script, re.M)) == set(PREFIXES.items())
    assert "root" not in script and "readWriteAnyDatabase" not in script


def kustomize() -> list[dict[str, Any]]:
    binary = shutil.which("kubectl") or shutil.which("kustomize")
    assert binary, "needs kubectl (or kustomize) to render the overlays"
    argv = [binary, "kustomize"] if binary.endswith("kubectl") else [binary, "build"]
    done = subprocess.run(
        [*argv, str(ROOT / "deploy" / "k8s" / "overlays" / "prod")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_kubernetes_gives_each_service_its_own_connection_secret_and_database_setting() -> None:
    docs = kustomize()
    [config] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("registry-config")]
    assert "MONGODB_DATABASE" not in config["data"]
    assert {f"{prefix}_MONGODB_DATABASE" for prefix in PREFIXES.values()} <= config["data"].keys()
    for doc in docs:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        [container] = doc["spec"]["template"]["spec"]["containers"]
        [uri] = [variable for variable in container["env"] if variable["name"] == "MONGODB_URI"]
        owner = "registration" if doc["kind"] == "Job" else doc["metadata"]["name"]  # the init job stores a key
        assert uri["valueFrom"]["secretKeyRef"]["key"] == f"mongodb-uri-{owner}"
