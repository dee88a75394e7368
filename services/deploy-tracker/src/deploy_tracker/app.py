"""``build_app(settings)``: wiring of the deploy-tracker service (health and metrics so far)."""

from __future__ import annotations

from fastapi import FastAPI

from deploy_tracker.config import DeployTrackerSettings
from shared.http_app import service_app
from shared.kafka import make_broker
from shared.mongo import make_client


def build_app(settings: DeployTrackerSettings) -> FastAPI:
    """The service's app; its consumers arrive with their issues."""
    return service_app(settings=settings, client=make_client(settings), broker=make_broker(settings)).app
