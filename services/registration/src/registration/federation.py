"""Registration's :class:`~shared.chassis.federation.Federation`: verify a token, then find the rule it meets.

Order: the platform's sign-in rules (``OIDC_SIGN_IN_RULES``, for people), tried in their order,
the first that matches deciding; then the trust rules of the team the caller names
(``X-Registry-Team``), oldest first, the first that matches deciding the scopes. A token acts under
a team's trust rules only for the team it names: another team's rules are never tried, so no team
can capture, block or probe another team's pipeline by writing a rule that matches its tokens.

Admitted principals are cached by the token's hash (and the named team) until the token expires
or ``ttl`` passes; the internal route other services ask admits afresh.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from registration.config import SignInRule
from registration.tokens import TokenVerifier, VerifiedToken
from registration.trust_rules import TrustRules
from registry_contract.auth import FederatedIdentity, Principal
from registry_contract.trust_rules import claims_match
from shared.chassis.federation import TokenRefused, token_slot

NO_RULE = "no_rule"
TEAM_NOT_NAMED = "team_not_named"  # no sign-in rule matched, and no team was named for the trust rules
SIGN_IN_RULE_PREFIX = "p"  # ids of sign-in rules: "p" and seven characters derived from the rule


@dataclass(frozen=True)
class Admission:
    """An admitted token: its principal, until the token expires."""

    principal: Principal
    expires_at: datetime


def sign_in_rule_id(rule: SignInRule) -> str:
    """A sign-in rule's id, stable across restarts and replicas (derived from what it matches and grants).

    Its description is left out: rewording a rule must not change the actor id of everyone it admits.
    """
    digest = hashlib.sha256(rule.model_dump_json(exclude={"description"}).encode()).hexdigest()
    return SIGN_IN_RULE_PREFIX + "".join(ch for ch in digest if ch.isalnum())[:7]


class LocalFederation:
    """Verifies tokens with ``verifier`` and admits them by ``sign_in_rules`` and the teams' ``rules``."""

    def __init__(
        self,
        verifier: TokenVerifier,
        rules: TrustRules,
        sign_in_rules: Sequence[SignInRule] = (),
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verifier, self.rules = verifier, rules
        self.sign_in_rules = [(sign_in_rule_id(rule), rule) for rule in sign_in_rules]
        self._ttl, self._max, self._clock = ttl, max_entries, clock
        self._cache: OrderedDict[str, tuple[float, Admission]] = OrderedDict()

    async def authenticate(self, token: str, *, team: str | None) -> Principal:
        """The principal ``token`` acts as (for ``team`` when named), or :class:`TokenRefused`."""
        return (await self.admit(token, team=team)).principal

    async def admit(self, token: str, *, team: str | None, fresh: bool = False) -> Admission:
        """:meth:`authenticate` with the token's expiry; ``fresh``: not from this replica's cache of admissions.

        The internal route asks ``fresh``: a replica that has not yet seen a rule's deletion must not
        admit under it (the asking service caches the answer in turn). The rules are read each time.
        """
        slot = token_slot(token, team)
        cached = self._cache.get(slot)
        if not fresh and cached is not None and cached[0] > self._clock():
            self._cache.move_to_end(slot)
            return cached[1]
        verified = await self.verifier.verify(token)
        admission = Admission(await self._principal(verified, team), verified.expires_at)
        remaining = (verified.expires_at - datetime.now(verified.expires_at.tzinfo)).total_seconds()
        self._cache[slot] = (self._clock() + min(self._ttl, remaining), admission)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return admission

    async def principal_of(self, rule_id: str) -> Principal | None:
        """The principal a rule grants, for a service acting for a token's caller (no identity: not re-proven)."""
        for own_id, rule in self.sign_in_rules:
            if own_id == rule_id:
                return Principal(key_id=rule_id, team=rule.team, scopes=frozenset(rule.scopes))
        record = await self.rules.by_id(rule_id)
        if record is None:
            return None
        return Principal(key_id=rule_id, team=record["team"], scopes=frozenset(record["scopes"]))

    def forget(self, rule_id: str) -> None:
        """Drop the admissions of ``rule_id`` (it was deleted)."""
        for slot in [slot for slot, (_, admission) in self._cache.items() if admission.principal.key_id == rule_id]:
            del self._cache[slot]

    def clear(self) -> None:
        """Drop every cached admission."""
        self._cache.clear()

    async def _principal(self, verified: VerifiedToken, team: str | None) -> Principal:
        for rule_id, rule in self.sign_in_rules:
            if rule.issuer == verified.issuer and claims_match(rule.claims, verified.claims):
                if team is not None and team != rule.team:
                    raise TokenRefused(NO_RULE)
                return _admitted(verified, rule_id, rule.team, rule.scopes, rule.claims)
        if team is None:
            raise TokenRefused(TEAM_NOT_NAMED)
        for record in await self.rules.of_team(team):  # oldest first: its first match decides
            if record["issuer"] == verified.issuer and claims_match(record["claims"], verified.claims):
                return _admitted(verified, record["_id"], team, record["scopes"], record["claims"])
        raise TokenRefused(NO_RULE)


def _admitted(
    verified: VerifiedToken, rule_id: str, team: str, scopes: Sequence[str], matched: dict[str, str]
) -> Principal:
    identity = FederatedIdentity(
        issuer=verified.issuer,
        subject=verified.subject,
        rule_id=rule_id,
        claims=tuple(sorted(matched.items())),
    )
    return Principal(key_id=rule_id, team=team, scopes=frozenset(scopes), identity=identity)
