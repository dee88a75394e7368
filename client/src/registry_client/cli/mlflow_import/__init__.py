"""``registry import mlflow``: registered models of an MLflow tracking server brought into this registry.

:mod:`.source` reads MLflow's REST API, :mod:`.mapping` turns what it read into an :class:`.plan.ImportPlan`
(pure data: the commands to send, in order, and what is left out and why).
"""
