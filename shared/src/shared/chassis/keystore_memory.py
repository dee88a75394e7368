"""The in-memory :class:`~shared.chassis.keystore.KeyStore`: the fake of unit tests, same answers as Mongo's."""

from __future__ import annotations

from dataclasses import dataclass

from registry_contract.auth import ApiKey, Principal, parse_api_key, secret_matches
from registry_contract.record_signing import RecordProof, signature_matches, signing_key


@dataclass
class _Key:
    principal: Principal
    secret_hash: str
    verifier: bytes | None
    revoked: bool = False


class InMemoryKeyStore:
    """Keys held in a dict; :meth:`add` a key (with or without a verifier), :meth:`revoke` it."""

    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}

    def add(self, key: ApiKey, *, team: str, scopes: frozenset[str], can_sign: bool = True) -> Principal:
        """Hold ``key`` for ``team``; without ``can_sign`` it has no verifier (a key from before signing)."""
        parsed = parse_api_key(key.token)
        assert parsed is not None, "an ApiKey in the key format"
        principal = Principal(key_id=key.key_id, team=team, scopes=scopes)
        verifier = signing_key(parsed[1]) if can_sign else None
        self._keys[key.key_id] = _Key(principal, key.secret_hash, verifier)
        return principal

    def revoke(self, key_id: str) -> None:
        """Revoke a key: it authenticates nothing more."""
        self._keys[key_id].revoked = True

    def _usable(self, key_id: str) -> _Key | None:
        held = self._keys.get(key_id)
        return held if held is not None and not held.revoked else None

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a presented API key."""
        parsed = parse_api_key(token) if token else None
        held = self._usable(parsed[0]) if parsed else None
        if parsed is None or held is None or not secret_matches(parsed[1], held.secret_hash):
            return None
        return held.principal

    async def verify(self, proof: RecordProof) -> Principal | None:
        """The principal of the key that signed a record, if the signature verifies."""
        held = self._usable(proof.key_id)
        if held is None or held.verifier is None or not signature_matches(held.verifier, proof):
            return None
        return held.principal

    async def principal_of(self, key_id: str) -> Principal | None:
        """The principal of a key a service vouches for, if still valid."""
        held = self._usable(key_id)
        return held.principal if held else None

    def forget(self, key_id: str) -> None:
        """Nothing is cached: a revocation shows at once."""

    def clear(self) -> None:
        """Nothing is cached: nothing to drop."""
