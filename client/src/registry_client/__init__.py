"""The Model Registry's Python client."""
