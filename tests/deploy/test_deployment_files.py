"""Dockerfiles, Compose, Kubernetes overlays and the CI workflow, checked with the tools and schemas we have here.

No Docker engine or cluster runs here, so what cannot be run is validated: the manifests
against the Kubernetes API schemas, Compose and the workflow against their published
schemas, and the promises each file makes (non-root, probes, secrets by reference,
entry-point modules that exist, consumers scaled to at most the partition count).
"""

import importlib.util
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from audit.config import AuditSettings
from deploy_tracker.config import DeployTrackerSettings
from query.config import QuerySettings
from registration.config import RegistrationSettings
from registration.storage import BULK_WRITE_WIRE_VERSION
from registry_cli.config import StackSettings
from registry_cli.stack import MEMORY_ENV, service_env
from shared.chassis.settings import CommonSettings

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"registration": "registration", "query": "query", "deploy-tracker": "deploy_tracker", "audit": "audit"}
OVERLAYS = {"dev": "model-registry-dev", "staging": "model-registry-staging", "prod": "model-registry"}
KUBERNETES_VERSION = "1.30.0"
SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|MONGODB_URI")


def check_schema(schema: str, path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def module_runs(module: str) -> bool:
    """``python -m module`` would find something to run."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations:  # a package: needs a __main__
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


# --- Dockerfiles ----------------------------------------------------------------------------


DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def dockerfile(service: str) -> str:
    """The one Dockerfile as built for ``service`` (``--build-arg SERVICE=service``)."""
    return re.sub(r"\$\{SERVICE\}|\$SERVICE\b", service, DOCKERFILE.read_text())


def entrypoint() -> Any:
    """The image's entry point, deploy/docker/entrypoint.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("image_entrypoint", DOCKERFILE.parent / "entrypoint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_dockerfile_builds_every_service_and_none_is_written_per_service() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^ARG SERVICE$", text, re.M)) == 2  # each stage that uses it declares it
    assert re.search(r"^ENV SERVICE=\$\{SERVICE\} ", text, re.M)  # the entry point reads it when the container starts
    assert sorted(path.name for path in DOCKERFILE.parent.iterdir() if "Dockerfile" in path.name) == ["Dockerfile"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_is_multi_stage_uv_built_non_root_and_health_checked(service: str) -> None:
    text = dockerfile(service)
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, re.M)
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    assert re.search(r'uv sync --frozen --no-dev --package "registry-' + re.escape(service) + '"', text)
    assert (ROOT / "services" / service / "pyproject.toml").is_file()
    runtime = text.split(f"AS {stages[-1]}", 1)[1]
    assert "uv" not in re.sub(r"#.*", "", runtime).split(), "uv is not in the runtime stage"
    user = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", runtime, re.M)
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, re.M):
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"


@pytest.mark.parametrize(("service", "module"), SERVICES.items())
def test_each_image_runs_its_service_module_on_every_interface(
    service: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = dockerfile(service)
    assert re.search(r'^ENTRYPOINT \["python", "/app/entrypoint.py"\]$', text, re.M)
    assert re.search(r"^COPY (?:--\S+ )*deploy/docker/entrypoint.py /app/entrypoint.py$", text, re.M)
    entry = entrypoint()
    assert entry.service_module(service) == module and module_runs(module)
    environment = entry.service_environment(service, {"KEPT": "as given"})
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = SERVICE_SETTINGS[service]()
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8080)  # what EXPOSE and HEALTHCHECK say
    assert environment["KEPT"] == "as given"


def test_the_containers_own_settings_win_over_the_images_defaults() -> None:
    given = {"QUERY_HTTP_HOST": "10.0.0.5", "QUERY_HTTP_PORT": "9000"}
    assert entrypoint().service_environment("query", given).items() >= given.items()


def test_an_image_built_without_a_service_says_so_and_runs_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(DOCKERFILE.parent / "entrypoint.py")],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "--build-arg SERVICE=" in done.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_limits_malloc_arenas_as_the_local_stack_does(service: str, tmp_path: Path) -> None:
    # docs/operations.md, "Memory": threads' malloc arenas kept the query's RSS a third higher.
    runtime_env = " ".join(re.findall(r"^ENV (.*(?:\\\n.*)*)", dockerfile(service), re.M))
    for name, value in MEMORY_ENV.items():
        assert f"{name}={value}" in runtime_env.split()
    for name in SERVICES:
        assert MEMORY_ENV.items() <= service_env(StackSettings(data_dir=tmp_path), name).items()


# --- Compose --------------------------------------------------------------------------------

COMPOSE = ROOT / "deploy" / "compose.yaml"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_matches_the_compose_specification() -> None:
    check_schema("vendor.compose-spec", COMPOSE)


def test_compose_runs_kraft_kafka_a_replica_set_the_services_and_monitoring() -> None:
    services = compose()["services"]
    assert {*SERVICES, "kafka", "mongo", "init", "prometheus", "alertmanager", "grafana"} <= services.keys()
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft: no ZooKeeper
    assert "--replSet" in services["mongo"]["command"]
    assert services["init"]["entrypoint"][-1] == "shared.chassis.bootstrap" and module_runs("shared.chassis.bootstrap")
    for name, module in SERVICES.items():
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["args"] == {"SERVICE": name}
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" not in services[name], f"{name}: the image's HEALTHCHECK applies"
        assert module_runs(module)
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
    published = [port.split(":")[-2] for service in services.values() for port in service.get("ports", [])]
    assert len(published) == len(set(published))


def test_compose_publishes_only_the_gateway_and_the_services_believe_only_its_forwarded_headers() -> None:
    spec = compose()
    services = spec["services"]
    assert services["gateway"]["ports"] == ["8443:8443"]
    for name, service in services.items():
        if name in SERVICES:
            assert "ports" not in service, f"{name} must be reached through the gateway only"
        elif name != "gateway":
            for port in service.get("ports", []):
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
    gateway_address = services["gateway"]["networks"]["default"]["ipv4_address"]
    subnet = spec["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(gateway_address) in ipaddress.ip_network(subnet)
    for name in SERVICES:
        environment = services[name].get("environment", spec["x-service"]["environment"])
        assert json.loads(environment["TRUSTED_PROXIES"]) == [gateway_address], name


def test_compose_alertmanager_reads_the_tested_config_and_its_secrets_from_the_environment() -> None:
    spec = compose()
    alertmanager = spec["services"]["alertmanager"]
    assert "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]
    config = yaml.safe_load((COMPOSE.parent / "alertmanager" / "alertmanager.yml").read_text())
    secret_files = {
        value
        for receiver in config["receivers"]
        for kind in receiver.values()
        if isinstance(kind, list)
        for entry in kind
        for value in (
            entry.get("routing_key_file"),
            entry.get("http_config", {}).get("authorization", {}).get("credentials_file"),
        )
        if value
    } | {config["global"]["slack_api_url_file"]}
    mounted = {secret["target"]: secret["source"] for secret in alertmanager["secrets"]}
    assert secret_files == set(mounted)
    assert all(spec["secrets"][source]["environment"].startswith("ALERTMANAGER_") for source in mounted.values())
    assert "alertmanager" in spec["services"]["prometheus"]["depends_on"]


def settings_names(settings_class: type[CommonSettings]) -> set[str]:
    """The environment variables a settings class reads: shared aliases and its own prefixed fields."""
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    names = set()
    for name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        names |= {str(choice).upper() for choice in getattr(alias, "choices", [])} or {prefix + name.upper()}
        names.add(prefix + name.upper())
    return names


SERVICE_SETTINGS: dict[str, type[CommonSettings]] = {
    "registration": RegistrationSettings,
    "query": QuerySettings,
    "deploy-tracker": DeployTrackerSettings,
    "audit": AuditSettings,
}


def test_compose_service_settings_are_ones_the_services_read_and_secrets_come_from_outside() -> None:
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        if name in SERVICES:
            unknown = set(environment) - settings_names(SERVICE_SETTINGS[name])
            assert not unknown, f"{name}: settings no service reads: {unknown}"
        for key, value in environment.items():
            if SECRET_NAMES.search(key) and key != "MONGODB_URI":
                assert str(value).startswith("${"), f"{name}: {key} must come from the environment"


# --- Kubernetes -----------------------------------------------------------------------------


def kustomize(overlay: str) -> list[dict[str, Any]]:
    binary = shutil.which("kubectl") or shutil.which("kustomize")
    assert binary, "needs kubectl (or kustomize) to render the overlays"
    argv = [binary, "kustomize"] if binary.endswith("kubectl") else [binary, "build"]
    done = subprocess.run(
        [*argv, str(ROOT / "deploy" / "k8s" / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, kustomize(request.param)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def test_every_overlay_validates_against_the_kubernetes_schemas(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, docs = rendered
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == OVERLAYS[overlay]


def test_every_service_has_probes_resources_a_service_an_hpa_and_a_pdb(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    deployments, hpas = by_kind(docs, "Deployment"), by_kind(docs, "HorizontalPodAutoscaler")
    services, pdbs = by_kind(docs, "Service"), by_kind(docs, "PodDisruptionBudget")
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert pod["securityContext"]["runAsNonRoot"] and not container["securityContext"]["allowPrivilegeEscalation"]
        assert container["image"].startswith(f"model-registry/{name}:")
        assert {name, f"{name}-pods"} <= services.keys() and services[f"{name}-pods"]["spec"]["clusterIP"] == "None"
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name and name in pdbs


def test_consumers_scale_to_at_most_the_partition_count(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    [config] = [
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("registry-config")
    ]
    partitions = int(config["data"]["KAFKA_TOPIC_PARTITIONS"])
    for name, deployment in by_kind(docs, "Deployment").items():
        hpa = by_kind(docs, "HorizontalPodAutoscaler")[name]["spec"]
        assert hpa["minReplicas"] <= hpa["maxReplicas"]
        if deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "consumer":
            assert hpa["maxReplicas"] <= partitions, f"{name}: replicas beyond {partitions} partitions would idle"


def test_secrets_are_referenced_never_embedded(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    assert not by_kind(docs, "Secret")
    pods = [doc["spec"]["template"]["spec"] for doc in docs if doc["kind"] in {"Deployment", "Job"}]
    for pod in pods:
        for container in pod["containers"]:
            for variable in container.get("env", []):
                if SECRET_NAMES.search(variable["name"]):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), variable["name"]
    for config in by_kind(docs, "ConfigMap").values():
        assert not [key for key in config["data"] if SECRET_NAMES.search(key)]


def test_the_init_job_runs_the_bootstrap_module(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    [job] = by_kind(docs, "Job").values()
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "shared.chassis.bootstrap"] and module_runs(
        "shared.chassis.bootstrap"
    )


def test_the_backup_cronjob_dumps_with_the_oplog_to_object_storage_and_keeps_a_bounded_history(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    cron = by_kind(docs, "CronJob")["registry-backup"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"  # a slow dump is never overlapped by the next
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    [dump] = pod["initContainers"]
    [upload] = pod["containers"]
    script = dump["command"][-1]
    assert "mongodump" in script and "--oplog" in script and "oplog.rs" in script and "oplog.bson" in script
    assert [v["valueFrom"]["secretKeyRef"]["key"] for v in dump["env"]] == ["mongodb-uri"]
    assert "--sse aws:kms" in upload["command"][-1] and "aws s3 rm" in upload["command"][-1]
    assert pod["serviceAccountName"] == "registry-backup" and pod["securityContext"]["runAsNonRoot"]
    [config] = [d for d in by_kind(docs, "ConfigMap").values() if d["metadata"]["name"].startswith("registry-backup")]
    assert int(config["data"]["BACKUP_RETENTION_DAYS"]) > 0 and config["data"]["BACKUP_BUCKET_URI"].startswith("s3://")


MONGODB_RELEASES = {25: "8.0"}  # wire version -> release, for the versions the registry requires


def test_the_backups_dump_with_the_mongodb_release_the_registry_requires(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    # An older mongodump against a newer server is not a supported pairing: the dump is what a
    # restore depends on, so it is taken by the release the server runs.
    image = f"mongo:{MONGODB_RELEASES[BULK_WRITE_WIRE_VERSION]}"
    services = compose()["services"]
    assert services["mongo"]["image"] == services["backup"]["image"] == image
    _, docs = rendered
    pod = by_kind(docs, "CronJob")["registry-backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [dump] = pod["initContainers"]
    assert dump["image"] == image


# --- CI workflow ----------------------------------------------------------------------------

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_the_workflow_matches_the_github_schema_and_does_what_it_says() -> None:
    check_schema("vendor.github-workflows", WORKFLOW)
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert {"lint", "test", "images", "real-infrastructure"} <= jobs.keys()
    assert any(step.get("run") == "bash .ci/run" for step in jobs["test"]["steps"])
    real = [step for step in jobs["real-infrastructure"]["steps"] if step.get("env")]
    assert real and real[0]["env"]["REGISTRY_TEST_INFRA"] == "testcontainers"
    assert sorted(jobs["images"]["strategy"]["matrix"]["service"]) == sorted(SERVICES)
    [build] = [step["with"] for step in jobs["images"]["steps"] if "build-push-action" in step.get("uses", "")]
    assert (ROOT / build["context"] / build["file"]).resolve() == DOCKERFILE
    assert build["build-args"] == "SERVICE=${{ matrix.service }}"
