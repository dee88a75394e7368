"""Path parameters every HTTP service validates before a handler sees them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from registry_contract import catalog

# Teams and model names are slugs everywhere (catalog.SLUG_PATTERN); anything else is a 422, never
# an error later (a team name that is not header-safe would break a Location header).
SlugPath = Annotated[str, Path(pattern=catalog.SLUG_PATTERN, description="a lowercase slug")]
# Ids the services make themselves (key ids, webhook ids, model ids): short, plain ASCII.
IdPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_:.-]+$")]
# A version in a path: SemVer (checked where it is used, with a precise message) or ``latest``;
# bounded here like the SemVer field of commands, so no handler parses an unbounded string.
VersionPath = Annotated[str, Path(max_length=256, description="a SemVer 2.0 version, or latest where allowed")]
