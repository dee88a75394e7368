"""The FastAPI dependency that turns request credentials into a :class:`Principal`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from shared.auth import Principal, bearer_token


async def http_principal(
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """Seam for access control (next issue): every route depends on this; anonymous for now."""
    _ = bearer_token(authorization, x_api_key)
    return Principal.anonymous()
