"""A GitHub Actions job from the docs, run as GitHub would run its ``run`` steps, against the test stack.

GitHub gives a job with ``id-token: write`` two variables: ``ACTIONS_ID_TOKEN_REQUEST_URL`` and
``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; a GET of the URL with ``&audience=…`` and the request token as
a bearer answers ``{"value": <OpenID Connect token>}``. Here that endpoint is a stand-in on
loopback handing out a token of the test's provider for the job's repository, with the claims
GitHub's token carries (``repository``, ``ref``, ``sha``, ``workflow``…). ``${{ vars.NAME }}``
expressions are the repository variables the test gives.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.oidc_provider import AUDIENCE, OidcProvider, pipeline_subject

EXPRESSION = re.compile(r"\$\{\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def claims_of(repository: str, sha: str, run_id: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    """What GitHub's token says of a run of ``repository`` at ``ref`` (the subset rules match on)."""
    return {
        "repository": repository,
        "repository_owner": repository.split("/")[0],
        "ref": ref,
        "sha": sha,
        "workflow": "release",
        "run_id": run_id,
        "event_name": "push",
    }


async def job_token(provider: OidcProvider, repository: str, sha: str, run_id: str) -> str:
    """The token GitHub would give the job (subject ``repo:<repository>:ref:<ref>``)."""
    subject = pipeline_subject(repository)
    await provider.set_user(subject, claims_of(repository, sha, run_id))
    return await provider.id_token(subject, audience=AUDIENCE)


@contextlib.contextmanager
def token_endpoint(token: str, *, audience: str = AUDIENCE) -> Iterator[tuple[str, str]]:
    """GitHub's token-request endpoint on loopback: yields (request URL, request token)."""
    request_token = secrets.token_urlsafe(16)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked = parse_qs(urlsplit(self.path).query).get("audience", [""])[0]
            if self.headers.get("authorization", "").lower() != f"bearer {request_token}".lower():
                self._answer(401, {"message": "bad request token"})
            elif asked != audience:
                self._answer(400, {"message": f"this stand-in signs for audience {audience!r} only"})
            else:
                self._answer(200, {"value": token})

        def _answer(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/token?api-version=2.0", request_token
    finally:
        server.shutdown()
        server.server_close()


def job_steps(workflow: str, variables: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The job's environment and its ``run`` scripts, with ``${{ vars.* }}`` filled in (the only job)."""
    document = yaml.safe_load(workflow)
    permissions = document.get("permissions") or {}
    if permissions.get("id-token") != "write":
        raise AssertionError("the job cannot ask for a token without permissions: id-token: write")
    (job,) = document["jobs"].values()

    def filled(text: str) -> str:
        return EXPRESSION.sub(lambda match: variables[match.group(1)], text)

    env = {name: filled(str(value)) for name, value in (job.get("env") or {}).items()}
    return env, [filled(step["run"]) for step in job["steps"] if "run" in step]
