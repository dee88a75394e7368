"""The Python client against the running stack: both clients, the main reads and writes, typed refusals.

The sync client blocks, so it runs in a thread: the event loop keeps draining the services' log pipes.
"""

import asyncio
import uuid
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import (
    AsyncRegistryClient,
    DuplicateVersion,
    Forbidden,
    Invalid,
    NotApproved,
    NotFound,
    RegistryClient,
    correlated,
)
from registry_client.config import ClientOptions
from registry_contract.deployment_views import ReportOutcome
from tests.client_fakes import Artifact
from tests.factories import ADMIN_KEY
from tests.http_tools import WRITER_SCOPES, Team, team_key, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
ARTIFACT: Artifact = {"framework": "xgboost", "artifact_uri": "s3://ml-models/client/model.tar.gz"}


def urls(stack: EmbeddedStack) -> ClientOptions:
    return {
        "registration_url": stack.url("registration"),
        "query_url": stack.url("query"),
        "deploy_tracker_url": stack.url("deploy-tracker"),
        "audit_url": stack.url("audit"),
    }


class TestTheSyncClient:
    async def test_it_registers_waits_and_reads_every_page_back(self, stack: EmbeddedStack, team: Team) -> None:
        def scenario() -> dict[str, Any]:
            with RegistryClient(team.writer, **urls(stack)) as client:
                for version in ("1.0.0", "1.1.0", "2.0.0-rc.1"):
                    client.register_version(team.name, "m", version, **ARTIFACT, tags={"owner": "alice"}, wait=True)
                with pytest.raises(DuplicateVersion) as duplicate:
                    client.register_version(team.name, "m", "1.0.0+build.7", **ARTIFACT)
                with pytest.raises(Invalid) as invalid:
                    client.register_version(team.name, "m", "3.0.0", framework="no-such", artifact_uri="s3://b/k")
                return {
                    "latest": client.get_version(team.name, "m").version,
                    "versions": [
                        v.version for v in client.versions(team.name, "m", page_size=1, include_prerelease=True)
                    ],
                    "stable": [v.version for v in client.versions(team.name, "m", version_range=">=1.1.0")],
                    "model": client.get_model(team.name, "m"),
                    "models": [m.name for m in client.models(team=team.name, tags={"owner": "alice"})],
                    "history": [event.type for event in client.history(team.name, "m")],
                    "duplicate": duplicate.value,
                    "invalid": invalid.value,
                }

        seen = await asyncio.to_thread(scenario)
        assert seen["latest"] == "1.1.0"
        assert seen["versions"] == ["2.0.0-rc.1", "1.1.0", "1.0.0"] and seen["stable"] == ["1.1.0"]
        assert seen["model"].version_count == 3 and seen["models"] == ["m"]
        assert seen["history"] == ["registry.event.model_version_registered"] * 3
        assert seen["duplicate"].status == 409 and seen["duplicate"].correlation_id
        assert any(error["loc"][-1] == "framework" for error in seen["invalid"].errors)

    async def test_another_teams_model_is_not_found_and_writing_to_it_is_forbidden(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        other = await team_key(stack, team_name("cl"), WRITER_SCOPES)

        def scenario() -> tuple[BaseException, ...]:
            with RegistryClient(team.writer, **urls(stack)) as mine, RegistryClient(other, **urls(stack)) as theirs:
                mine.register_version(team.name, "secret", "1.0.0", **ARTIFACT)
                refusals = []
                for attempt in (
                    lambda: theirs.get_model(team.name, "secret"),
                    lambda: theirs.get_version(team.name, "secret", "1.0.0"),
                    lambda: list(theirs.versions(team.name, "secret")),
                    lambda: theirs.register_version(team.name, "secret", "2.0.0", **ARTIFACT),
                ):
                    with pytest.raises((NotFound, Forbidden)) as raised:
                        attempt()
                    refusals.append(raised.value)
                return tuple(refusals)

        *reads, write = await asyncio.to_thread(scenario)
        assert [type(error) for error in reads] == [NotFound] * 3 and type(write) is Forbidden

    async def test_aliases_and_approvals(self, stack: EmbeddedStack, team: Team) -> None:
        def scenario() -> dict[str, Any]:
            with (
                RegistryClient(team.writer, **urls(stack)) as writer,
                RegistryClient(team.approver, **urls(stack)) as approver,
            ):
                for version in ("1.0.0", "1.1.0"):
                    writer.register_version(team.name, "m", version, **ARTIFACT)
                first = writer.set_alias(team.name, "m", "champion", "1.0.0")
                moved = writer.set_alias(team.name, "m", "champion", "1.1.0")
                through_alias = writer.get_version(team.name, "m", "@champion")
                aliases = writer.list_aliases(team.name, "m")
                writer.remove_alias(team.name, "m", "champion")
                with pytest.raises(NotFound):
                    writer.get_version(team.name, "m", "@champion")
                with pytest.raises(Forbidden):
                    writer.set_approval(team.name, "m", "1.1.0", "approved")
                approved = approver.set_approval(team.name, "m", "1.1.0", "approved", comment="reviewed")
                return {"first": first, "moved": moved, "via": through_alias, "aliases": aliases, "approved": approved}

        seen = await asyncio.to_thread(scenario)
        assert seen["first"].previous_version is None and seen["moved"].previous_version == "1.0.0"
        assert seen["via"].version == "1.1.0" and seen["via"].aliases == ["champion"]
        assert seen["aliases"].items == [{"alias": "champion", "version": "1.1.0"}]
        assert (seen["approved"].approval.status, seen["approved"].approval.comment) == ("approved", "reviewed")


class TestTheAsyncClient:
    async def test_curation_lineage_and_deletes(self, stack: EmbeddedStack, team: Team) -> None:
        async with AsyncRegistryClient(team.writer, **urls(stack)) as client:
            base = await client.register_version(team.name, "base", "1.0.0", **ARTIFACT, wait=True)
            child = await client.register_version(
                team.name,
                "small",
                "1.0.0",
                **ARTIFACT,
                source={"run_id": "run-81", "code_commit": "4f2a9c1"},
                parent={"team": team.name, "name": "base", "version": "1.0.0"},
            )
            updated = await client.update_version(
                team.name, "small", "1.0.0", description="distilled", metrics={"auc": 0.9}
            )
            deprecated = await client.set_lifecycle(team.name, "base", "1.0.0", "deprecated")
            metadata = await client.update_model(
                team.name, "base", owners=[{"name": "Alice", "email": "alice@example.com"}], documentation="# Base"
            )
            lineage = await client.get_lineage(team.name, "small", "1.0.0")
            await client.register_version(team.name, "small", "1.1.0-rc.1", **ARTIFACT)
            await client.delete_version(team.name, "small", "1.1.0-rc.1")
            remaining = [v.version async for v in client.versions(team.name, "small", include_prerelease=True)]
            model = await client.get_model_by_id(base.model_id)
        assert child.parent is not None and child.parent.name == "base"
        assert updated.description == "distilled" and updated.metrics == {"auc": 0.9}
        assert deprecated.lifecycle == "deprecated" and set(metadata.changes) == {"owners", "documentation"}
        assert [p.name for p in lineage.parents] == ["base"] and not lineage.parents_truncated
        assert remaining == ["1.0.0"] and model.documentation == "# Base"

    async def test_shares_let_another_team_read(self, stack: EmbeddedStack, team: Team) -> None:
        other_team = f"cl-{uuid.uuid4().hex[:8]}"
        other = await team_key(stack, other_team, ["models:read"])
        async with AsyncRegistryClient(team.writer, **urls(stack)) as owner:
            # The reader gets the owner's consistency tokens: its reads wait for the share and the unshare.
            reader = AsyncRegistryClient(other, **(urls(stack) | {"consistency": owner.consistency}))
            await owner.register_version(team.name, "m", "1.0.0", **ARTIFACT)
            shared = await owner.share(team.name, "m", other_team)
            read = await reader.get_model(team.name, "m")
            shares = await owner.list_shares(team.name, "m")
            await owner.unshare(team.name, "m", other_team)
            with pytest.raises(NotFound):
                await reader.get_model(team.name, "m")
            await reader.close()
        assert shared.with_team == other_team and read.name == "m"
        assert shares.items == [{"team": other_team}]

    async def test_deployment_reports_wait_for_their_outcome(self, stack: EmbeddedStack, team: Team) -> None:
        async with (
            AsyncRegistryClient(team.writer, **urls(stack)) as client,
            AsyncRegistryClient(team.approver, **urls(stack)) as approver,
        ):
            await client.register_version(team.name, "m", "1.0.0", **ARTIFACT)
            with pytest.raises(NotApproved) as refused:
                await client.report_deployment(team.name, "m", "1.0.0", "prod", "deployed", wait=20)
            staged = await client.report_deployment(team.name, "m", "1.0.0", "staging", "deploying", wait=20)
            await approver.set_approval(team.name, "m", "1.0.0", "approved")
            live = await client.report_deployment(team.name, "m", "1.0.0", "prod", "deployed", pipeline="ci", wait=20)
            deployments = await client.get_deployments(team.name, "m", "1.0.0")
            history = [
                report.outcome async for report in client.deployment_history(team.name, "m", "1.0.0", page_size=1)
            ]
        assert "not approved" in refused.value.detail
        assert isinstance(staged, ReportOutcome) and staged.status == "deploying"
        assert isinstance(live, ReportOutcome) and (live.status, live.skipped_deploying) == ("deployed", True)
        assert deployments.status == "deployed" and set(deployments.environments) == {"staging", "prod"}
        assert history == ["rejected", "applied", "applied"]

    async def test_keys_webhooks_and_the_audit_log(self, stack: EmbeddedStack, team: Team) -> None:
        async with AsyncRegistryClient(team.writer, **urls(stack)) as client:
            created = await client.create_api_key(team.name, "ci", ["models:read"])
            listed = await client.list_api_keys(team.name)
            await client.revoke_api_key(team.name, created.key_id)
            hook = await client.create_webhook(team.name, "http://127.0.0.1:9/hook", ["*"], description="tests")
            rotated = await client.rotate_webhook_secret(team.name, hook.id, previous_valid_seconds=60)
            hooks = await client.list_webhooks(team.name)
            deliveries = await client.list_deliveries(team.name, hook.id)
            await client.delete_webhook(team.name, hook.id)
            with correlated(f"client-{uuid.uuid4().hex[:8]}") as correlation:
                await client.register_version(team.name, "m", "1.0.0", **ARTIFACT)
            assert client.last_correlation_id == correlation

            async def audited() -> list[str] | None:
                # Both: the access entry is published apart from the event, up to a linger later.
                types = [entry.type async for entry in client.audit_entries(correlation_id=correlation)]
                both = {"registry.event.model_version_registered", "registry.access.write"}
                return types if both <= set(types) else None

            types = await until(audited, what="the registration audited")
            verdict = await client.verify_audit(limit=50)
        assert created.token.startswith("mr_") and created.key_id in {key.key_id for key in listed.items}
        assert rotated.secret != hook.secret and rotated.previous_secret_expires_at is not None
        assert [h.id for h in hooks.items] == [hook.id] and deliveries.items == []
        assert "registry.access.write" in types and verdict.ok and verdict.scope == f"team:{team.name}"

    async def test_search_cards_and_the_document_feed(self, stack: EmbeddedStack, team: Team) -> None:
        async with AsyncRegistryClient(team.writer, **urls(stack)) as client:
            await client.register_version(
                team.name, "card-scorer", "1.0.0", **ARTIFACT, description="Scores card payments", wait=True
            )

            async def found() -> list[str] | None:
                hits = [hit.model.name async for hit in client.search("card payments", team=team.name)]
                return hits or None

            hits = await until(found, what="the model searchable")
            page = await client.search_page(f"team:{team.name}", limit=5)
            card = await client.get_card(team.name, "card-scorer")
            markdown = await client.get_card_markdown(team.name, "card-scorer", version="1.0.0")

            async def in_feed() -> list[str] | None:
                ids = [document.id async for document in client.documents()]
                return ids or None

            documents = await until(in_feed, what="the model in the document feed")
            streamed = [item async for item in client.stream_documents()]
            meta = await client.meta()
        assert hits == ["card-scorer"] and page.total == 1 and page.facets["team"] == {team.name: 1}
        assert card.card.details.name == "card-scorer" and markdown == card.markdown
        assert documents == [card.card.details.model_id] and streamed[-1].next_cursor  # type: ignore[union-attr]
        assert "xgboost" in meta.frameworks


async def test_a_platform_admin_reads_every_team(stack: EmbeddedStack, team: Team) -> None:
    async with (
        AsyncRegistryClient(team.writer, **urls(stack)) as client,
        # The writer's consistency tokens travel to the admin's client: its list waits for the write.
        AsyncRegistryClient(ADMIN_KEY.token, **(urls(stack) | {"consistency": client.consistency})) as admin,
    ):
        await client.register_version(team.name, "m", "1.0.0", **ARTIFACT)
        models = [model.name async for model in admin.team_models(team.name)]
    assert models == ["m"]
