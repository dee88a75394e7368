"""The short names of the messages a producer may publish (``registry produce <kind>``)."""

from __future__ import annotations

from registry_contract import messages

# Short names (``registry produce <kind>``) of every command type, and of the deployment report.
KINDS: dict[str, str] = {
    "register": messages.REGISTER_MODEL_VERSION,
    "update": messages.UPDATE_MODEL_VERSION,
    "lifecycle": messages.SET_VERSION_LIFECYCLE,
    "share": messages.SHARE_MODEL,
    "unshare": messages.UNSHARE_MODEL,
    "alias": messages.SET_ALIAS,
    "remove-alias": messages.REMOVE_ALIAS,
    "approval": messages.SET_APPROVAL,
    "update-model": messages.UPDATE_MODEL,
    "delete": messages.DELETE_VERSION,
    "deploy": messages.DEPLOY_STATUS_REPORTED,
}
