"""The ``registry`` command a user runs: reads, writes, search, cards, export, import from MLflow, keys.

Commands of other packages join it through the ``registry.commands`` entry points (the local
stack adds ``up``, ``dlq``, ``backup``…): see :mod:`registry_client.cli.main`.
"""
