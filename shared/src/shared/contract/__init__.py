"""Deprecated: the contract is its own distribution now, ``registry-contract`` (import ``registry_contract``).

``shared.contract`` and its modules (``shared.contract.messages``, …) still import, as the very
modules of ``registry_contract``, with a :class:`DeprecationWarning`; they will go in a later
release (CHANGELOG.md).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings

import registry_contract

warnings.warn(
    "shared.contract moved to the registry-contract distribution: import registry_contract instead",
    DeprecationWarning,
    stacklevel=2,
)
for _module in pkgutil.iter_modules(registry_contract.__path__):
    sys.modules[f"{__name__}.{_module.name}"] = importlib.import_module(f"registry_contract.{_module.name}")
