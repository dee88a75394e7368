"""The local stack's commands, added to the user's ``registry`` command (an entry point of this package).

``up`` runs the stack; ``audit verify``, ``dlq``, ``projection``, ``backup`` and ``restore`` work on
its databases and topics; ``bench`` runs the benchmarks.
"""

from __future__ import annotations

import asyncio
import runpy
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from registry_cli.admin import verify_audit
from registry_cli.backup_commands import backup_command, restore_command
from registry_cli.config import StackSettings
from registry_cli.database_users import redacted
from registry_cli.dlq import dlq_app
from registry_cli.processes import PortInUse
from registry_cli.projection import projection_app
from registry_cli.stack import EmbeddedStack, StackError
from registry_cli.stack_tls import stack_tls
from registry_cli.supervise import GaveUp

console = Console(stderr=True, soft_wrap=True)


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


def _produce_exports(settings: StackSettings) -> str:
    """What ``registry produce`` needs to reach a ``--tls`` stack's broker: its CA and client certificate."""
    tls = stack_tls(settings)
    return (
        f"  registry produce: export KAFKA_SSL_CAFILE={tls.ca} KAFKA_SSL_CERTFILE={tls.client.cert}"
        f" KAFKA_SSL_KEYFILE={tls.client.key}"
    )


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
        *(
            ['  (the password: eval "$(REGISTRY_STACK_TLS=true python -m registry_cli.database_users)")']
            if s.tls
            else []
        ),
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
            [
                f"  TLS            every hop; clients trust {s.tls_dir / 'ca.pem'} (export SSL_CERT_FILE=…)",
                _produce_exports(s),
            ]
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


def bench(ctx: typer.Context) -> None:
    """Run ``bench/registry_bench.py`` (from the repository root) with the given options."""
    script = Path("bench/registry_bench.py")
    if not script.is_file():
        console.print("[red]error:[/red] run `registry bench` from the repository root (bench/ not found)")
        raise typer.Exit(2)
    sys.argv = [str(script), *ctx.args]
    sys.path[:0] = [str(script.parent.resolve())]  # its siblings (stats, …), as `python bench/…` would have
    runpy.run_path(str(script), run_name="__main__")


def __getattr__(name: str) -> object:
    """``registry_cli.main.app``, kept for scripts written before the client held the command (deprecated)."""
    if name != "app":
        raise AttributeError(name)
    warnings.warn("registry_cli.main.app moved: use registry_client.cli.main.app", DeprecationWarning, stacklevel=2)
    from registry_client.cli.main import app

    return app


def register(app: typer.Typer) -> None:
    """Add the stack's commands to ``app``, the user's ``registry`` command."""
    app.command()(up)
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(bench)
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(projection_app, name="projection")
    for info in app.registered_groups:
        if info.name == "audit" and info.typer_instance is not None:
            # The client's `audit verify` checks bundles only; this one also walks the database.
            commands = info.typer_instance.registered_commands
            commands[:] = [command for command in commands if command.name != "verify"]
            info.typer_instance.command("verify")(verify_audit)


if __name__ == "__main__":  # `python -m registry_cli.main`, as before the move
    from registry_client.cli.main import app as registry

    registry()
