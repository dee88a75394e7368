"""Document ids derived from natural keys, so writers need no lookup and readers get point reads."""

from __future__ import annotations

import hashlib

from registry_contract.versioning import precedence_key

# Records of nobody: the sender-scoped namespace of commands and reports without a valid key
# (not a slug, so it is no team's), and the Kafka key and subject of their outcomes.
ANONYMOUS_SCOPE = "~anonymous"
ANONYMOUS = "anonymous"


def sender_scoped(team: str | None, ce_id: str) -> str:
    """A sender-chosen ``ce_id`` within its sender's team, so no other sender can collide with it."""
    return f"{team or ANONYMOUS_SCOPE}/{ce_id}"


def model_id(team: str, name: str) -> str:
    """The stable id of a model, derived from its team and name."""
    return "mdl_" + hashlib.sha256(f"{team}/{name}".encode()).hexdigest()[:24]


def version_doc_id(model: str, version_key: str) -> str:
    """The id of a version document: equal exactly when SemVer precedence is equal."""
    return f"{model}:{version_key}"


def version_id(team: str, name: str, version: str) -> str:
    """The id of the document of ``version`` of ``team/name``."""
    return version_doc_id(model_id(team, name), precedence_key(version))
