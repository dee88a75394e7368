"""``python -m shared.chassis.bootstrap``: create topics, and store the bootstrap admin key.

Run once per deployment before the services (the Compose ``init`` service, the Kubernetes
init Job). Every step is idempotent, so running it on every deploy is safe. Indexes are each
service's own business: every service creates its own at start-up, in its own database. The key
goes into registration's database (registration owns API keys), named by the same variable
registration reads, ``REGISTRATION_MONGODB_DATABASE``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from pydantic import AliasChoices, Field, SecretStr

from registry_contract.auth import (
    MIN_SECRET_BITS,
    PLATFORM_TEAM,
    SCOPES,
    ApiKey,
    estimated_entropy_bits,
    generate_api_key,
    hash_secret,
    parse_api_key,
)
from shared.chassis.kafka import ensure_topics
from shared.chassis.keystore import issue_key
from shared.chassis.logs import configure_logging
from shared.chassis.mongo import API_KEYS, make_client
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import VERIFIER_FIELD, VerifierBox


class BootstrapSettings(CommonSettings):
    """The shared settings plus the key to install (a Secret in Kubernetes, never a literal)."""

    service_name: str = "registry-init"
    bootstrap_admin_key: str | None = Field(None, validation_alias="BOOTSTRAP_ADMIN_KEY")
    # Registration's database (it owns API keys): the variable registration itself reads.
    registration_mongodb_database: str = Field(
        "registration",
        validation_alias=AliasChoices("REGISTRATION_MONGODB_DATABASE", "registration_mongodb_database"),
    )
    kafka_topic_partitions: int = Field(
        6, validation_alias=AliasChoices("KAFKA_TOPIC_PARTITIONS", "kafka_topic_partitions")
    )
    kafka_replication_factor: int = Field(
        1, validation_alias=AliasChoices("KAFKA_REPLICATION_FACTOR", "kafka_replication_factor")
    )
    # Seals the bootstrap key's signature verifier: the variable registration reads (unset: derived
    # from EVENT_SIGNING_KEY, as registration derives it).
    key_verifier_sealing_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KEY_VERIFIER_SEALING_KEYS", "key_verifier_sealing_keys")
    )


BOOTSTRAP_NAME = "bootstrap"


async def store_bootstrap_key(
    db: Any, given: str | None, *, created_by: str, verifiers: VerifierBox | None = None
) -> str | None:
    """Install the ``platform:admin`` bootstrap key; return its token when it is to be shown.

    ``given`` (a key in the ``mr_<id>_<secret>`` format with a random-looking secret) is stored unless it
    exists: re-running never re-enables a revoked key. Without one, a key is made only if this
    database has no bootstrap key yet (one per data directory, shown once); later starts return
    ``None`` and the first key stays the only one. With ``verifiers`` the key can sign Kafka
    records; a given key stored before signing existed gets its verifier now.
    """
    if given:
        parsed = parse_api_key(given)
        if parsed is None:
            raise ValueError("the bootstrap key is not of the form mr_<8 chars>_<secret>")
        if estimated_entropy_bits(parsed[1]) < MIN_SECRET_BITS:
            raise ValueError("the bootstrap key's secret is not random enough: generate one (docs/operations.md)")
        key = ApiKey(key_id=parsed[0], token=given, secret_hash=hash_secret(parsed[1]))
        if await db[API_KEYS].find_one({"_id": key.key_id}, {"_id": 1}):
            if verifiers is not None:
                unsigned = {"_id": key.key_id, "secret_hash": key.secret_hash, VERIFIER_FIELD: {"$exists": False}}
                await db[API_KEYS].update_one(unsigned, {"$set": {VERIFIER_FIELD: verifiers.seal_for(key.token)}})
            return key.token
    else:
        if await db[API_KEYS].find_one({"team": PLATFORM_TEAM, "name": BOOTSTRAP_NAME}, {"_id": 1}):
            return None
        key = generate_api_key()
    await issue_key(
        db[API_KEYS],
        team=PLATFORM_TEAM,
        name=BOOTSTRAP_NAME,
        scopes=list(SCOPES),
        created_by=created_by,
        given=key,
        verifiers=verifiers,
    )
    return key.token


async def bootstrap(settings: BootstrapSettings) -> list[str]:
    """Create the contract's topics (with ``.dlq``); install the admin key in registration's database if given."""
    topics = await ensure_topics(
        settings, partitions=settings.kafka_topic_partitions, replication_factor=settings.kafka_replication_factor
    )
    if not settings.bootstrap_admin_key:
        return topics
    client = make_client(settings)
    try:
        db = client[settings.registration_mongodb_database]
        sealing_keys = settings.key_verifier_sealing_keys
        sealable = sealing_keys or settings.event_signing_key
        verifiers = VerifierBox.of(settings, sealing_keys=sealing_keys) if sealable else None  # without: cannot sign
        await store_bootstrap_key(db, settings.bootstrap_admin_key, created_by="bootstrap job", verifiers=verifiers)
    finally:
        await client.close()
    return topics


def main() -> int:
    """Entry point of the init job; a non-zero exit fails the job so the rollout waits."""
    settings = BootstrapSettings()
    configure_logging(service=settings.service_name, fmt=settings.log_format, level=settings.log_level)
    try:
        topics = asyncio.run(bootstrap(settings))
    except Exception as exc:  # one line for the job's status, not a traceback
        print(f"bootstrap failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    key_note = "admin key installed" if settings.bootstrap_admin_key else "no BOOTSTRAP_ADMIN_KEY given"
    print(f"bootstrap done: {len(topics)} topics, {key_note} ({os.getpid()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
