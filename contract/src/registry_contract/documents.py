"""The shape of a stored document, for code that must not depend on the database driver."""

from typing import Any

Document = dict[str, Any]  # a MongoDB document as PyMongo returns it (BSON types as Python values)
