"""Which service serves a path: what a request sent to the wrong service is told in its 404 (or 405).

Services never import each other, so the chassis keeps the registry's routing as a small table of
path prefixes, the gateway's (``deploy/gateway/registry.conf.template``): registration takes the
writes under ``/v1/models`` and the API keys, the deploy-tracker the deployment reports and the
webhooks, audit its log, and query every read. A unit test checks the table against every route
of every service's OpenAPI document.
"""

from __future__ import annotations

import re

_READS = frozenset({"GET", "HEAD"})
MAX_PATH_SHOWN = 200  # characters of the requested path a refusal repeats
MAX_METHOD_SHOWN = 16  # and of its method, which the caller chooses too
# (path pattern, the methods it is for (None: any), the service that serves it), first match wins.
ROUTES: tuple[tuple[re.Pattern[str], frozenset[str] | None, str], ...] = (
    (re.compile(r"/v1/models(/|$)"), _READS, "query"),
    (re.compile(r"/v1/models(/|$)"), None, "registration"),
    (re.compile(r"/v1/teams/[^/]+/(api-keys|trust-rules|signing-keys)(/|$)"), None, "registration"),
    (re.compile(r"/v1/whoami$"), None, "registration"),
    (re.compile(r"/v1/teams/[^/]+/webhooks(/|$)"), None, "deploy-tracker"),
    (re.compile(r"/v1/teams/"), _READS, "query"),
    (re.compile(r"/v1/deployments(/|$)"), None, "deploy-tracker"),
    (re.compile(r"/v1/audit(/|$)"), None, "audit"),
    (re.compile(r"/v1/(meta|assistant)(/|$)"), _READS, "query"),
    (re.compile(r"/(mcp|console)(/|$)"), None, "query"),
)


def owner(method: str, path: str) -> str | None:
    """The service that serves ``method`` ``path`` (``None``: none of the API's routes)."""
    return next(
        (service for pattern, methods, service in ROUTES if pattern.match(path) and (not methods or method in methods)),
        None,
    )


def unserved(service: str, method: str, path: str) -> str:
    """The detail of the refusal of a route ``service`` does not serve, naming the service that does, if any."""
    shown = path if len(path) <= MAX_PATH_SHOWN else path[:MAX_PATH_SHOWN] + "…"
    detail = f"the {service} service does not serve {method[:MAX_METHOD_SHOWN]} {shown}"
    serving = owner(method, path)
    if serving is None or serving == service:
        return detail
    return f"{detail}: the {serving} service does (on its own port, or through the gateway, which routes it there)"
