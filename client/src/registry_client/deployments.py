"""Deployment reports over HTTP: the deploy-tracker's bridge to ``deploy.events``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import httpx

from registry_client.config import ApiBase
from registry_client.steps import Call, body
from registry_client.surface import endpoint
from registry_contract.deployment_views import ReportAccepted, ReportOutcome

DeploymentStatus = Literal["deploying", "deployed", "failed", "rolled_back", "retired"]


def _report_answer(response: httpx.Response) -> ReportAccepted | ReportOutcome:
    """200 is the tracker's outcome (``Prefer: wait``); 202 says only that the report was published."""
    if response.status_code == 200:
        return ReportOutcome.model_validate_json(response.content)
    return ReportAccepted.model_validate_json(response.content)


class DeploymentReports(ApiBase):
    """Reports of where a version is deployed (scope ``deployments:write`` of the model's team)."""

    @endpoint
    def report_deployment(
        self,
        team: str,
        name: str,
        version: str,
        environment: str,
        status: DeploymentStatus,
        *,
        occurred_at: datetime | None = None,
        target: str | None = None,
        pipeline: str | None = None,
        run_id: str | None = None,
        url: str | None = None,
        message: str | None = None,
        wait: int | None = None,
    ) -> Call[ReportAccepted | ReportOutcome]:
        """Report a deployment (``occurred_at`` defaults to now); the tracker applies it asynchronously.

        With ``wait`` (seconds, capped by the server at 30) the answer is the tracker's outcome
        (:class:`ReportOutcome`), or its refusal raised (:class:`NotApproved`, :class:`Conflict`…);
        :class:`ReportAccepted` when it did not answer in time. Not resent once it may have arrived:
        the bridge takes no idempotency key.
        """
        data = body(
            team=team,
            name=name,
            version=version,
            environment=environment,
            status=status,
            occurred_at=occurred_at or datetime.now(UTC),
            target=target,
            pipeline=pipeline,
            run_id=run_id,
            url=url,
            message=message,
        )
        headers = {"Prefer": f"wait={wait}"} if wait is not None else {}
        timeout = self.config.timeout + wait if wait is not None else None
        route = "/v1/deployments/events"
        return Call("deploy-tracker", "POST", route, _report_answer, json=data, headers=headers, timeout=timeout)
