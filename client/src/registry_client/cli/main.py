"""The ``registry`` Typer app: the user's commands, and those other installed packages add to it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from registry_client.cli.audit import check_audit, evidence, export_audit, verify_audit_bundle
from registry_client.cli.browse import card, deployments, list_audit, models_app, search, versions_app
from registry_client.cli.compare import compare
from registry_client.cli.curate import aliases_app, approve, reject
from registry_client.cli.export import export_app
from registry_client.cli.history import history_app
from registry_client.cli.importing import import_app
from registry_client.cli.keys import keys_app
from registry_client.cli.mcp_stdio import mcp
from registry_client.cli.signing import sign, signing_keys_app, verify, with_signature
from registry_client.cli.trust_rules import trust_rules_app
from registry_client.kafka_tls import kafka_tls_options
from registry_client.kinds import KINDS

# Packages that add commands name a ``register(app)`` function under this entry-point group.
PLUGIN_GROUP = "registry.commands"

app = typer.Typer(
    help="Model Registry: browse, curate, export and import models; more with the local stack.", no_args_is_help=True
)
audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
audit_app.command("list")(list_audit)
audit_app.command("export")(export_audit)
audit_app.command("check")(check_audit)
audit_app.command("evidence")(evidence)
# Checks an evidence bundle offline; the local stack, when installed, replaces it with its own
# `audit verify`, which walks the audit database and takes --bundle to this same check.
audit_app.command("verify")(verify_audit_bundle)
STACK_EXTENDED = frozenset({"verify"})  # audit commands the local stack's plugin replaces
app.add_typer(keys_app, name="keys")
app.add_typer(trust_rules_app, name="trust-rules")
app.add_typer(signing_keys_app, name="signing-keys")
app.add_typer(audit_app, name="audit")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(models_app, name="models")
app.add_typer(versions_app, name="versions")
app.add_typer(aliases_app, name="aliases")
app.add_typer(history_app, name="history")
app.command("mcp")(mcp)
app.command("search")(search)
app.command("card")(card)
app.command("compare")(compare)
app.command("deployments")(deployments)
app.command("approve")(approve)
app.command("reject")(reject)
app.command("sign")(sign)
app.command("verify")(verify)
console = Console(stderr=True, soft_wrap=True)


def group(name: str) -> typer.Typer:
    """The sub-command group ``name`` (``audit``…), for a plugin that adds commands to it."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    raise KeyError(name)


@app.command()
def produce(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}")],
    data: Annotated[str | None, typer.Option(help="The data as JSON; '-' or omitted reads stdin")] = None,
    file: Annotated[Path | None, typer.Option(help="Read the data from this JSON file")] = None,
    signature: Annotated[
        Path | None,
        typer.Option(
            help="register only: a model signature (`registry sign -o FILE`) sent as the version's"
            " provenance.signature, verified against the team's signing keys",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
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
    kafka_ca_file: Annotated[
        str | None, typer.Option(envvar="KAFKA_SSL_CAFILE", help="TLS to the broker: the CA that signed it")
    ] = None,
    kafka_cert_file: Annotated[
        str | None, typer.Option(envvar="KAFKA_SSL_CERTFILE", help="TLS to the broker: this client certificate")
    ] = None,
    kafka_key_file: Annotated[
        str | None, typer.Option(envvar="KAFKA_SSL_KEYFILE", help="TLS to the broker: the certificate's key")
    ] = None,
) -> None:
    """Publish a command or a deploy report as a CloudEvent (binary mode); print its id, or with --wait its outcome.

    Without --wait, stdout gets the record's id and stderr says how to find its outcome: the
    registry applies or refuses it after this command has exited.

    Needs the ``kafka`` extra: ``pip install 'registry-client[kafka]'``.
    """
    if kind not in KINDS:
        console.print(f"[red]error:[/red] unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        raise typer.Exit(2)
    raw = file.read_text() if file else (data if data not in (None, "-") else sys.stdin.read())
    try:
        payload = json.loads(raw or "")
    except json.JSONDecodeError as exc:
        console.print(f"[red]error:[/red] data is not JSON: {exc}")
        raise typer.Exit(2) from None
    if signature is not None:
        payload = with_signature(kind, payload, signature)
    try:
        from registry_client.cli.produce import produce_and_wait, produce_message
    except ImportError:
        console.print(
            "[red]error:[/red] publishing to Kafka needs the kafka extra: pip install 'registry-client\\[kafka]'"
        )
        raise typer.Exit(2) from None
    options = kafka_tls_options(kafka_ca_file, kafka_cert_file, kafka_key_file)
    correlation_id = correlation_id or uuid.uuid4().hex  # known here, so the outcome can be looked up by it
    common: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "api_key": api_key,
        "correlation_id": correlation_id,
    }
    if wait is None:
        typer.echo(asyncio.run(produce_message(kind, payload, **common, **options)))
        # Published is not applied: the registry may still refuse it (a command_rejected event).
        console.print(
            "published, not yet applied or refused (add --wait 30 to wait for the outcome); later, its outcome: "
            f"registry audit list --correlation-id {correlation_id} (audit:read)",
            markup=False,
        )
        return
    try:
        outcome = asyncio.run(produce_and_wait(kind, payload, **common, timeout=wait, **options))
    except TimeoutError:
        console.print(f"[red]error:[/red] no outcome on registry.events within {wait:g} s")
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


def own_commands() -> tuple[set[str], set[str]]:
    """The names of this package's commands and groups, and of its ``audit`` group's commands."""
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    groups = {g.name or "" for g in app.registered_groups}
    audit = {c.name or "" for c in audit_app.registered_commands}
    return {name.replace("_", "-") for name in commands} | groups, audit


def needs_plugins(argv: list[str], environ: Mapping[str, str]) -> bool:
    """Whether this invocation may use another package's commands: not when it names one of ours.

    Loading the stack's commands imports the stack (about half a second): a user command of the
    ``registry`` program need not. Help, shell completion, an import as a library and anything
    else load them all.
    """
    if Path(argv[0]).name not in {"registry", "main.py"} or any(name.endswith("_COMPLETE") for name in environ):
        return True  # imported as a library (tests, the docs' generator), or completing: every command
    words = [arg for arg in argv[1:] if not arg.startswith("-")]
    own, audit = OWN_COMMANDS
    if not words or words[0] not in own:
        return True
    return words[0] == "audit" and (len(words) < 2 or words[1] not in audit or words[1] in STACK_EXTENDED)


def _load_plugins() -> None:
    """Add every installed package's commands; one that fails to load costs only its own commands."""
    for entry in metadata.entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()(app)
        except Exception as exc:  # a broken plugin must not take the user's commands with it
            console.print(f"warning: the commands of {entry.value} are unavailable: {exc!r}", markup=False)


OWN_COMMANDS = own_commands()  # before any plugin adds its own
if needs_plugins(sys.argv, os.environ):
    _load_plugins()

if __name__ == "__main__":
    app()
