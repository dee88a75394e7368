"""A data directory made before one database per service: its shared ``model_registry`` moved to the owners.

Before issue 23 every service kept its collections in one database, ``model_registry``. ``registry
up`` on such a data directory moves each of those collections into the database of the service
that declares it (its ``storage`` modules), with its documents and indexes (``renameCollection``),
before any service starts; what no service declares any more stays where it is. An owner's
collection that already exists and is empty (a service started once before the move) is replaced;
one that holds documents is never overwritten, and the old one is left in place and reported.
Once each service's database is named ``model_registry`` no more, nothing is left to move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import AsyncMongoClient

SHARED_DATABASE = "model_registry"


def owners() -> dict[str, str]:
    """Each collection a service declares, and that service."""
    from audit import storage as audit
    from deploy_tracker import storage as deploy_tracker
    from query.console import storage as console
    from query.projection import storage as projection
    from registration import storage as registration

    declared = {
        "registration": [registration.INDEXES],
        "deploy-tracker": [deploy_tracker.INDEXES],
        "query": [console.INDEXES, projection.INDEXES],
        "audit": [audit.INDEXES],
    }
    return {name: service for service, tables in declared.items() for table in tables for name in table}


async def adopt_shared_database(client: AsyncMongoClient[Any], databases: Mapping[str, str]) -> dict[str, list[str]]:
    """Move the collections of ``model_registry`` on this server to the owners' databases.

    ``databases`` maps each service using this server to its database. Returns what was moved
    (``"model_registry.x -> owner.x"``) and what was left because the owner's copy holds documents.
    """
    report: dict[str, list[str]] = {"moved": [], "left": []}
    if SHARED_DATABASE not in await client.list_database_names():
        return report
    owner_of = owners()
    for name in sorted(await client[SHARED_DATABASE].list_collection_names()):
        service = owner_of.get(name)
        target = databases.get(service) if service else None
        if target is None or target == SHARED_DATABASE:
            continue
        if name in await client[target].list_collection_names():
            if await client[target][name].estimated_document_count():
                report["left"].append(f"{SHARED_DATABASE}.{name}")
                continue
            await client[target].drop_collection(name)
        await client.admin.command({"renameCollection": f"{SHARED_DATABASE}.{name}", "to": f"{target}.{name}"})
        report["moved"].append(f"{SHARED_DATABASE}.{name} -> {target}.{name}")
    return report
