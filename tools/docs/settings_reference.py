"""The settings reference: every environment variable the services, the init job and the local stack read.

Made from the pydantic-settings classes themselves: the variable's name as pydantic-settings
reads it, its type and default from the field, and its meaning from the field's description or
else the comment above the field in the class's source (else :mod:`tools.docs.setting_notes`).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, NoDecode

from registry_cli.config import StackSettings
from shared.chassis.bootstrap import BootstrapSettings
from shared.chassis.settings import CommonSettings
from tools.docs.markdown import code, table, text
from tools.docs.services import SERVICES
from tools.docs.setting_notes import NOTES, REQUIRED

UNDESCRIBED = "**no description**: add a comment above the field"


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it is read, its type, default and meaning."""

    variable: str
    owner: type[BaseSettings]
    field: str
    type: str
    default: str
    description: str


def _env_prefix(settings_class: type[BaseSettings]) -> str:
    return str(settings_class.model_config.get("env_prefix", ""))


def variable(settings_class: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable pydantic-settings reads ``name`` from: its first alias, else prefix + name."""
    alias = field.validation_alias
    first = alias.choices[0] if isinstance(alias, AliasChoices) else alias
    if isinstance(first, AliasPath):
        first = str(first.path[0])
    return (first or _env_prefix(settings_class) + name).upper()


@dataclass(frozen=True)
class Comment:
    """The comment above a run of fields: about one field, or a heading over several."""

    text: str
    fields: int


def comments(settings_class: type[BaseSettings]) -> dict[str, Comment]:
    """The comment right above a field of the class's own body, by field name.

    The fields after it, up to a blank line or the next comment, get none: the comment is about
    the first, or a heading over them all ("Webhooks: attempts, backoff, timeout"), which a note
    for the first field replaces.
    """
    runs: list[tuple[str, list[str]]] = []
    pending: list[str] = []
    for line in inspect.getsource(settings_class).splitlines():
        if line.startswith("     "):  # a field's continuation line
            continue
        if line.startswith("    #"):
            if runs and not pending and runs[-1][1]:
                runs.append(("", []))  # a comment closes the run before it
            pending.append(line.strip().lstrip("#").strip())
            continue
        field = re.match(r"    (\w+)\s*:", line)
        if field:
            if pending or not runs:
                runs.append((" ".join(pending), []))
                pending = []
            runs[-1][1].append(field.group(1))
        elif not line.strip():
            runs.append(("", []))
            pending = []
    return {names[0]: Comment(words, len(names)) for words, names in runs if words and names}


_NAMES = {"str": "text", "int": "integer", "float": "number", "bool": "boolean", "Path": "path", "HttpUrl": "URL"}


def _type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " or ".join(code(str(value)) for value in get_args(annotation))
    arguments = [a for a in get_args(annotation) if a is not type(None)]
    if arguments and len(arguments) < len(get_args(annotation)):  # Optional[X]
        return _type(arguments[0] if len(arguments) == 1 else annotation)
    if annotation is SecretStr:
        return "secret"
    origin = get_origin(annotation)
    if origin in (list, tuple, set):
        return "JSON list"
    if isinstance(annotation, type):
        names = {
            "str": "text",
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "Path": "path",
            "HttpUrl": "URL",
        }
        return names.get(annotation.__name__, annotation.__name__)
    return text(str(annotation))


def _comma_separated(field: FieldInfo) -> bool:
    """Whether the setting is a list read as ``a,b`` from the environment (``NoDecode``), or as a JSON list."""
    return any(item is NoDecode or isinstance(item, NoDecode) for item in field.metadata)


def _bounds(field: FieldInfo) -> str:
    bounds = []
    for item in field.metadata:
        for kind, attribute, sign in ((Ge, "ge", "≥"), (Gt, "gt", ">"), (Le, "le", "≤"), (Lt, "lt", "<")):
            if isinstance(item, kind):
                bounds.append(f"{sign} {_number(getattr(item, attribute))}")
    return f" ({', '.join(bounds)})" if bounds else ""


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def default(field: FieldInfo) -> str:
    """The default as one would write it in the environment; ``—`` when there is none."""
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, (list, tuple, set)):
        return code(json.dumps(list(value)))
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (int, float)):
        return code(_number(value))
    if isinstance(value, Path):
        return code(str(value))
    return code(str(value)) if str(value) else "empty"


def settings_of(settings_class: type[BaseSettings], names: list[str]) -> Iterator[Setting]:
    """The settings of ``names``, fields of ``settings_class``, in the order the class declares them."""
    described: dict[str, Comment] = {}
    for klass in reversed(settings_class.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseSettings) and klass is not BaseSettings:
            described |= comments(klass)
    for name in names:
        field = settings_class.model_fields[name]
        env = variable(settings_class, name, field)
        comment = described.get(name)
        specific = comment.text if comment and comment.fields == 1 else None
        heading = comment.text if comment and comment.fields > 1 else None
        description = field.description or specific or NOTES.get(env) or heading or UNDESCRIBED
        listed = _comma_separated(field)
        annotation = ("comma-separated or JSON list" if listed else _type(field.annotation)) + _bounds(field)
        shown = f"required by {REQUIRED[env]}" if env in REQUIRED else default(field)
        if listed and shown.startswith("`["):  # written as the environment takes it: a,b (or nothing)
            values = field.get_default(call_default_factory=True, validated_data={})
            shown = code(",".join(values)) if values else "empty"
        yield Setting(env, settings_class, name, annotation, shown, description)


def _own(settings_class: type[BaseSettings]) -> list[str]:
    return [name for name in settings_class.model_fields if name in vars(settings_class).get("__annotations__", {})]


def sections() -> list[tuple[str, str, list[Setting]]]:
    """(title, what reads them, settings) for every settings class, shared ones first."""
    shared = [n for n, f in CommonSettings.model_fields.items() if f.validation_alias is not None]
    prefixed = [n for n in CommonSettings.model_fields if n not in shared]
    found = [
        (
            "Shared by the services",
            "Read by the chassis for each service that uses what they configure (at least two services; the init job"
            " too), under the same name, without a prefix.",
            list(settings_of(CommonSettings, shared)),
        )
    ]
    for service in SERVICES:
        names = prefixed + [n for n in _own(service.settings) if n not in prefixed]
        prefix = _env_prefix(service.settings)
        own = list(settings_of(service.settings, names))
        kept = " (a name without it is one kept from when the setting was shared)"
        unprefixed = any(not s.variable.startswith(prefix) for s in own)
        found.append(
            (
                service.name,
                f"Read by the {service.name} service only, with its prefix `{prefix}`{kept if unprefixed else ''}.",
                own,
            )
        )
    found.append(
        (
            "The init job",
            "`python -m shared.chassis.bootstrap` (Compose's `init`, the Kubernetes init Job) reads the shared"
            " settings above and these.",
            list(settings_of(BootstrapSettings, _own(BootstrapSettings))),
        )
    )
    found.append(
        (
            "The local stack",
            "`registry up` (and `make run`), and the commands that work on its data directory. The earlier"
            " names without `STACK_` (`REGISTRY_TLS`, `REGISTRY_DATA_DIR`, …) still work; the new one wins.",
            list(settings_of(StackSettings, list(StackSettings.model_fields))),
        )
    )
    return found


INTRO = """\
# Settings reference

Every setting is an environment variable. The services read the shared ones without a prefix and
their own with `REGISTRATION_`, `QUERY_`, `DEPLOY_TRACKER_` or `AUDIT_`; each service runs alone
with `python -m registration` (or `query`, `deploy_tracker`, `audit`). Lists are given as JSON
(`REGISTRATION_ARTIFACT_SCHEMES='["s3","gs"]'`). The defaults are those of real infrastructure;
`registry up` sets what its embedded stand-ins need. This page is generated from the settings
classes (`python -m tools.docs`); a test fails when it no longer matches them.
"""

CLIENT = """\
## The Python client and the `registry` command

They read `REGISTRY_API_KEY` (the key, or an OpenID Connect token a team's trust rule matches),
`REGISTRY_TEAM` (the team such a token acts for, sent as `X-Registry-Team`), `REGISTRY_GATEWAY_URL`
(one address for every service) or `REGISTRY_QUERY_URL`, `REGISTRY_REGISTRATION_URL`,
`REGISTRY_DEPLOY_TRACKER_URL` and `REGISTRY_AUDIT_URL`, and `REGISTRY_CONSISTENCY` (tokens a read
must see): [the client](../client.md#connecting).
Each command's own variables are listed with its options in [the command line reference](cli.md).
`SSL_CERT_FILE` names the CA that HTTPS clients trust (`.data/tls/ca.pem` for `registry up --tls`).
"""


def page() -> str:
    """The settings page (markdown)."""
    parts = [INTRO]
    for title, reader, found in sections():
        owner = found[0].owner if found else CommonSettings
        parts += [f"## {title}\n", f"{reader} Class: `{owner.__module__}.{owner.__qualname__}`.\n"]
        rows = [[code(s.variable), s.type, s.default, text(s.description)] for s in found]
        parts.append(table(["variable", "type", "default", "meaning"], rows))
    parts.append(CLIENT)
    return "\n".join(parts)


def undescribed() -> list[str]:
    """The variables nothing describes (no field description, no comment, no note)."""
    return [s.variable for _, _, found in sections() for s in found if s.description == UNDESCRIBED]


def unused_notes() -> list[str]:
    """Notes no setting needs: a comment or a description says it now, or the setting is gone."""
    used = {s.variable for _, _, found in sections() for s in found if s.description == NOTES.get(s.variable)}
    return sorted(set(NOTES) - used)
