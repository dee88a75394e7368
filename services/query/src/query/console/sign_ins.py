"""Sign-ins through the identity provider in flight: state, nonce and PKCE verifier, each used once.

The browser holds only a random flow id (the ``mr_console_oidc`` cookie); MongoDB holds the flow
under the id's SHA-256, its secrets sealed under the id itself as a session's key is, for ten
minutes (the TTL index removes it at ``expires_at``). Taking a flow deletes it: a replayed
callback finds nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo.asynchronous.collection import AsyncCollection

from query.console.sessions import record_id, seal, unseal
from registry_contract.documents import Document

FLOW_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class SignInFlow:
    """One sign-in at the provider: what its answer must match, and where the person goes afterwards."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str  # sent again with the code: it must be the one the provider redirected to
    next_page: str

    @classmethod
    def new(cls, *, redirect_uri: str, next_page: str) -> SignInFlow:
        """A flow with fresh random state, nonce and verifier (the verifier: 64 characters of RFC 7636's alphabet)."""
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            redirect_uri=redirect_uri,
            next_page=next_page,
        )


class SignInFlows(Protocol):
    """Where flows wait for the provider's answer."""

    async def begin(self, flow: SignInFlow) -> str:
        """Keep ``flow`` for :data:`FLOW_LIFETIME`; the id that takes it back (for the cookie only)."""
        ...

    async def take(self, flow_id: str) -> SignInFlow | None:
        """The live flow of ``flow_id``, deleted as it is taken; ``None`` if unknown, expired or taken already."""
        ...


class SignIns:
    """:class:`SignInFlows` in the ``console_sign_ins`` collection."""

    def __init__(
        self, collection: AsyncCollection[Document], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.collection, self.clock = collection, clock

    async def begin(self, flow: SignInFlow) -> str:
        flow_id = secrets.token_urlsafe(32)
        secret = json.dumps({"state": flow.state, "nonce": flow.nonce, "code_verifier": flow.code_verifier})
        now = self.clock()
        await self.collection.insert_one(
            {
                "_id": record_id(flow_id),
                "sealed": seal(flow_id, secret),
                "redirect_uri": flow.redirect_uri,
                "next": flow.next_page,
                "created_at": now,
                "expires_at": now + FLOW_LIFETIME,
            }
        )
        return flow_id

    async def take(self, flow_id: str) -> SignInFlow | None:
        live = {"_id": record_id(flow_id), "expires_at": {"$gt": self.clock()}}
        record = await self.collection.find_one_and_delete(live)
        opened = unseal(flow_id, record["sealed"]) if record is not None else None
        if record is None or opened is None:
            return None
        secret = json.loads(opened)
        return SignInFlow(
            state=secret["state"],
            nonce=secret["nonce"],
            code_verifier=secret["code_verifier"],
            redirect_uri=record["redirect_uri"],
            next_page=record["next"],
        )


class MemorySignIns:
    """:class:`SignInFlows` in a dict: the fake of unit tests, with the same answers."""

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.flows: dict[str, tuple[SignInFlow, datetime]] = {}

    async def begin(self, flow: SignInFlow) -> str:
        flow_id = secrets.token_urlsafe(32)
        self.flows[record_id(flow_id)] = (flow, self.clock() + FLOW_LIFETIME)
        return flow_id

    async def take(self, flow_id: str) -> SignInFlow | None:
        flow, expires_at = self.flows.pop(record_id(flow_id), (None, self.clock()))
        return flow if flow is not None and expires_at > self.clock() else None
