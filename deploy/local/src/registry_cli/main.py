"""The ``registry`` command: run the local stack, publish messages, manage keys, benchmark."""

from __future__ import annotations

import asyncio
import json
import runpy
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from registry_cli.admin import audit_app, keys_app
from registry_cli.backup_commands import backup_command, restore_command
from registry_cli.browse import card, deployments, list_audit, models_app, search, versions_app
from registry_cli.config import StackSettings
from registry_cli.curate import aliases_app, approve, reject
from registry_cli.database_users import redacted
from registry_cli.dlq import dlq_app
from registry_cli.export import export_app
from registry_cli.importing import import_app
from registry_cli.mcp_stdio import mcp
from registry_cli.processes import PortInUse
from registry_cli.produce import KINDS, produce_and_wait, produce_message
from registry_cli.projection import projection_app
from registry_cli.stack import EmbeddedStack, StackError
from registry_cli.stack_tls import kafka_client_options
from registry_cli.supervise import GaveUp

app = typer.Typer(help="Model Registry: local stack and tools.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(dlq_app, name="dlq")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(projection_app, name="projection")
app.command("mcp")(mcp)
audit_app.command("list")(list_audit)
app.add_typer(models_app, name="models")
app.add_typer(versions_app, name="versions")
app.add_typer(aliases_app, name="aliases")
app.command("search")(search)
app.command("card")(card)
app.command("deployments")(deployments)
app.command("approve")(approve)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("reject")(reject)
console = Console(stderr=True, soft_wrap=True)


@app.command()
def up(
    data_dir: Annotated[Path | None, typer.Option(help="Where MongoDB keeps its files (default .data)")] = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions per topic (default 6)")] = None,
    with_prometheus: Annotated[
        bool, typer.Option(help="Also run Prometheus (:9090, alert rules) and Alertmanager (:9093, routes)")
    ] = False,
    with_gateway: Annotated[
        bool, typer.Option(help="Also run nginx as the one HTTPS entry point (:8443, needs Debian's nginx)")
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(help="TLS on every hop: broker, databases (client certificates), the services' own HTTPS"),
    ] = False,
) -> None:
    """Start the embedded broker, database and the four services; Ctrl-C stops everything."""
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if partitions is not None:
        overrides["partitions"] = partitions
    if tls:
        overrides["tls"] = True
    settings = StackSettings(**overrides)  # type: ignore[arg-type]
    raise typer.Exit(asyncio.run(_run_stack(settings, with_prometheus=with_prometheus, with_gateway=with_gateway)))


async def _run_stack(settings: StackSettings, *, with_prometheus: bool, with_gateway: bool = False) -> int:
    stack = EmbeddedStack(settings)
    try:
        stack.check_ports(prometheus=with_prometheus, gateway=with_gateway)
    except PortInUse as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    code = 0
    try:
        await stack.start_infrastructure()
        await stack.start_services()
        if with_prometheus:
            await stack.start_prometheus()
        if with_gateway:
            await stack.start_gateway()
        _print_banner(stack)
        await stack.supervisor(_supervisor_says).run(stopping)
    except GaveUp as exc:
        console.print(f"[red]error:[/red] {exc}; shutting down")
        code = 1
    except (StackError, TimeoutError, RuntimeError) as exc:  # a missing tool is a RuntimeError too
        console.print(f"[red]error:[/red] {exc}")
        code = 1
    finally:
        console.print("stopping services, then MongoDB, then Kafka …")
        await stack.stop()
        console.print("stopped")
    return code


def _supervisor_says(line: str) -> None:
    console.print(f"{'supervisor':<15}| {line}")


def _print_banner(stack: EmbeddedStack) -> None:
    s = stack.settings
    lines = [
        "[bold green]Model Registry is up[/bold green]",
        f"  console        {stack.url('query')}/console   (sign in with the key below)",
        *(
            [f"  gateway        {stack.gateway_url}   (every API, one URL; CA: {s.data_dir / 'tls' / 'ca.pem'})"]
            if stack.gateway
            else []
        ),
        f"  query          {stack.url('query')}   (docs: {stack.url('query')}/docs)",
        f"  registration   {stack.url('registration')}",
        f"  deploy-tracker {stack.url('deploy-tracker')}",
        f"  audit          {stack.url('audit')}",
        f"  Kafka          {s.kafka_bootstrap}",
        f"  MongoDB        {redacted(s.mongodb_uri)}",
        f"  audit MongoDB  {redacted(s.audit_mongodb_uri)}   (the audit log's own server)",
        *(['  (the password: eval "$(REGISTRY_TLS=true python -m registry_cli.database_users)")'] if s.tls else []),
        *(
            [
                f"  Prometheus     {stack.prometheus_url} (alerts: {stack.prometheus_url}/alerts)",
                f"  Alertmanager   {stack.alertmanager_url}"
                + (f" (notifies {s.alert_webhook_url}/<receiver>)" if s.alert_webhook_url else ""),
            ]
            if stack.prometheus
            else []
        ),
        *(
            [f"  TLS            every hop; clients trust {s.tls_dir / 'ca.pem'} (export SSL_CERT_FILE=…)"]
            if s.tls
            else []
        ),
        f"  logs           {s.data_dir / 'logs'}",
        (
            f"  bootstrap platform:admin key: [bold]{stack.admin_key}[/bold] (shown this once)"
            if stack.admin_key
            else "  bootstrap platform:admin key: shown at the first start of this data directory"
            " (another: REGISTRY_API_KEY=<an admin key> registry keys create --team platform --scope platform:admin)"
        ),
        *(
            [f"  moved from the shared model_registry database: {', '.join(stack.adopted['moved'])}"]
            if stack.adopted["moved"]
            else []
        ),
        *(
            [
                f"  [yellow]left in model_registry[/yellow] (the owner's database already holds that "
                f"collection): {', '.join(stack.adopted['left'])}"
            ]
            if stack.adopted["left"]
            else []
        ),
        "  Ctrl-C stops everything.",
    ]
    console.print("\n".join(lines))


@app.command()
def produce(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}")],
    data: Annotated[str | None, typer.Option(help="The data as JSON; '-' or omitted reads stdin")] = None,
    file: Annotated[Path | None, typer.Option(help="Read the data from this JSON file")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="REGISTRY_API_KEY", help="Signs the record")] = None,
    bootstrap_servers: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS")] = "127.0.0.1:9092",
    correlation_id: Annotated[str | None, typer.Option(help="Propagated as ce_correlationid")] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            help="Wait at most this many seconds for the registry's outcome on registry.events and print it as"
            " JSON, with the consistency token that makes a later read see the write (REGISTRY_CONSISTENCY);"
            " exit 4 when refused, 1 when no outcome came in time",
            min=0.1,
        ),
    ] = None,
) -> None:
    """Publish a command or a deploy report as a CloudEvent (binary mode); print its id, or with --wait its outcome."""
    if kind not in KINDS:
        console.print(f"[red]error:[/red] unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        raise typer.Exit(2)
    raw = file.read_text() if file else (data if data not in (None, "-") else sys.stdin.read())
    try:
        payload = json.loads(raw or "")
    except json.JSONDecodeError as exc:
        console.print(f"[red]error:[/red] data is not JSON: {exc}")
        raise typer.Exit(2) from None
    options = kafka_client_options(StackSettings())  # with REGISTRY_TLS=true: the stack's client certificate
    if wait is not None:
        _produce_and_wait(kind, payload, bootstrap_servers, api_key, correlation_id, wait, options)
        return
    event_id = asyncio.run(
        produce_message(
            kind,
            payload,
            bootstrap_servers=bootstrap_servers,
            api_key=api_key,
            correlation_id=correlation_id,
            **options,
        )
    )
    typer.echo(event_id)


def _produce_and_wait(
    kind: str,
    payload: dict[str, object],
    bootstrap_servers: str,
    api_key: str | None,
    correlation_id: str | None,
    timeout: float,
    options: dict[str, object],
) -> None:
    try:
        outcome = asyncio.run(
            produce_and_wait(
                kind,
                payload,
                bootstrap_servers=bootstrap_servers,
                api_key=api_key,
                correlation_id=correlation_id,
                timeout=timeout,
                **options,
            )
        )
    except TimeoutError:
        console.print(f"[red]error:[/red] no outcome on registry.events within {timeout:g} s")
        raise typer.Exit(1) from None
    answer = {
        "command_id": outcome.command_id,
        "type": outcome.type,
        "revision": outcome.revision,
        "consistency_token": outcome.consistency_token,
        "data": dict(outcome.data),
    }
    typer.echo(json.dumps(answer, indent=2))  # ASCII only: control characters leave as \uXXXX
    if outcome.rejected:
        raise typer.Exit(4)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Run ``bench/registry_bench.py`` (from the repository root) with the given options."""
    script = Path("bench/registry_bench.py")
    if not script.is_file():
        console.print("[red]error:[/red] run `registry bench` from the repository root (bench/ not found)")
        raise typer.Exit(2)
    sys.argv = [str(script), *ctx.args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    app()
