"""The gateway's configurations: nginx's template passes `nginx -t`, Compose serves it, and the
Kubernetes HTTPRoutes send every documented route to the service that serves it."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_cli.certificates import leaf
from registry_cli.gateway import TEMPLATE, nginx_argv, nginx_binary, render, write_config
from tests.routes import documented_routes
from tests.throwaway import throwaway_settings

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
ROUTES_DIR = ROOT / "deploy" / "k8s" / "gateway"


def nginx_test(config: Path, prefix: Path) -> None:
    settings = throwaway_settings(prefix)
    done = subprocess.run(
        [nginx_binary(settings), "-t", "-p", str(prefix), "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_template_as_compose_renders_it_passes_nginx_t(tmp_path: Path) -> None:
    tls = leaf(tmp_path / "tls", "gateway", ["registry.example.com"])
    values = {
        "GATEWAY_LISTEN": "127.0.0.1:18443",  # Compose: 8443; a port a test may bind
        "GATEWAY_TLS_CERT_FILE": str(tls.cert),
        "GATEWAY_TLS_KEY_FILE": str(tls.key),
        "QUERY_UPSTREAM": "query:8080",
        "REGISTRATION_UPSTREAM": "registration:8080",
        "DEPLOY_TRACKER_UPSTREAM": "deploy-tracker:8080",
        "AUDIT_UPSTREAM": "audit:8080",
        "UPSTREAM_SCHEME": "http",
        "UPSTREAM_TLS": "",
    }
    (tmp_path / "logs").mkdir()
    (tmp_path / "registry.conf").write_text(render(values))
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"error_log {tmp_path / 'logs' / 'error.log'}; pid {tmp_path / 'nginx.pid'};\n"
        f"events {{}}\nhttp {{ include {tmp_path / 'registry.conf'}; }}\n"
    )
    # Compose's service names do not resolve here: point them at loopback for the check only.
    conf = (tmp_path / "registry.conf").read_text()
    for host in ("query", "registration", "deploy-tracker", "audit"):
        conf = conf.replace(f"server {host}:8080;", "server 127.0.0.1:8080;")
    (tmp_path / "registry.conf").write_text(conf)
    nginx_test(config, tmp_path)


def test_the_local_gateway_config_passes_nginx_t(tmp_path: Path) -> None:
    settings = throwaway_settings(tmp_path)
    done = subprocess.run(nginx_argv(settings, write_config(settings), test=True), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_placeholder_of_the_template_is_given_by_compose() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    gateway = compose["services"]["gateway"]
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE.read_text()))
    assert placeholders <= gateway["environment"].keys()
    assert re.match(gateway["environment"]["NGINX_ENVSUBST_FILTER"], "GATEWAY_LISTEN")
    assert all(re.match(gateway["environment"]["NGINX_ENVSUBST_FILTER"], name) for name in placeholders)
    assert "./gateway/registry.conf.template:/etc/nginx/templates/registry.conf.template:ro" in gateway["volumes"]


# --- Kubernetes: evaluate the HTTPRoutes as the Gateway API orders matches -----------------------


def http_routes() -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all((ROUTES_DIR / "routes.yaml").read_text()) if doc]
    return [doc for doc in docs if doc["kind"] == "HTTPRoute"]


def route_for(method: str, path: str) -> str | None:
    """The backend the HTTPS listener's routes send ``method path`` to.

    Precedence: an exact path, then a regular expression (nginx-based controllers, like nginx
    itself, try regex locations before prefixes), then the longest prefix; among equals, a match
    that names a method first.
    """
    candidates = []
    for route in http_routes():
        if route["spec"]["parentRefs"][0].get("sectionName") != "https":
            continue
        for rule in route["spec"]["rules"]:
            for match in rule["matches"]:
                kind, value = match["path"]["type"], match["path"]["value"]
                if "method" in match and match["method"] != method:
                    continue
                if kind == "Exact" and path == value:
                    rank = (3, len(value))
                elif kind == "RegularExpression" and re.fullmatch(value, path):
                    rank = (2, len(value))
                elif kind == "PathPrefix" and (path == value or path.startswith(value.rstrip("/") + "/")):
                    rank = (1, len(value))
                else:
                    continue
                candidates.append(((*rank, "method" in match), rule["backendRefs"][0]["name"]))
    return max(candidates)[1] if candidates else None


def test_every_documented_route_has_an_httproute_to_its_service() -> None:
    wrong = [
        (method, path, service, route_for(method, path))
        for service, method, path in documented_routes()
        if route_for(method, path) != service
    ]
    assert wrong == []


def test_the_gateway_terminates_tls_and_redirects_plain_http() -> None:
    gateway = yaml.safe_load((ROUTES_DIR / "gateway.yaml").read_text())
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    assert listeners["https"]["protocol"] == "HTTPS" and listeners["https"]["tls"]["mode"] == "Terminate"
    [redirect] = [r for r in http_routes() if r["spec"]["parentRefs"][0]["sectionName"] == "http"]
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"
    limits = yaml.safe_load((ROUTES_DIR / "client-settings.yaml").read_text())
    assert limits["spec"]["body"]["maxSize"] == "256k" and limits["spec"]["targetRef"]["name"] == "registry"


def test_routes_name_services_that_exist_on_their_ports() -> None:
    services = {}
    for path in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Service":
                services[doc["metadata"]["name"]] = {port["port"] for port in doc["spec"]["ports"]}
    for route in http_routes():
        for rule in route["spec"]["rules"]:
            for backend in rule.get("backendRefs", []):
                assert backend["port"] in services[backend["name"]], backend
