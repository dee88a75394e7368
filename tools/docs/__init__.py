"""Generate the documentation site's reference pages (``docs/reference/``) from the code itself.

``python -m tools.docs`` writes them; ``python -m tools.docs --check`` only says which are stale.
"""
