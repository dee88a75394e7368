"""Aliases, approvals, model metadata, lineage, latest and deletes, end to end over HTTP and Kafka."""

import json
import uuid

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_client.consistency import CONSISTENCY_HEADER
from registry_contract import messages
from tests.factories import binary_record, command_event
from tests.http_tools import ADMIN, Team, acting_as, register, team_key
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN_SCOPES = ["models:read", "models:write", "team:admin"]


class TestAliasesOverHttp:
    async def test_an_alias_resolves_like_a_version_and_is_shown_on_it(self, stack: EmbeddedStack, team: Team) -> None:
        t = team.name
        for version in ("1.0.0", "1.1.0"):
            await register(stack, team.writer, t, "m", version)
        async with acting_as(stack, "registration", team.writer) as http:
            set_alias = await http.put(f"/v1/models/{t}/m/aliases/champion", json={"version": "1.0.0"})
            moved = await http.put(f"/v1/models/{t}/m/aliases/champion", json={"version": "1.1.0"})
            archived = await http.post(f"/v1/models/{t}/m/versions/1.0.0/lifecycle", json={"state": "archived"})
            to_archived = await http.put(f"/v1/models/{t}/m/aliases/old", json={"version": "1.0.0"})
        assert set_alias.status_code == 200 and moved.json()["previous_version"] == "1.0.0"
        assert archived.status_code == 200 and to_archived.status_code == 409
        async with acting_as(stack, "query", team.writer) as http:
            http.headers[CONSISTENCY_HEADER] = moved.headers[CONSISTENCY_HEADER]  # the reads wait for the move
            resolved = await http.get(f"/v1/models/{t}/m/versions/@champion")
            listed = await http.get(f"/v1/models/{t}/m/aliases")
            unknown = await http.get(f"/v1/models/{t}/m/versions/@nothing")
            model = await http.get(f"/v1/models/{t}/m")
        assert resolved.json()["version"] == "1.1.0" and resolved.json()["aliases"] == ["champion"]
        assert listed.json() == {"items": [{"alias": "champion", "version": "1.1.0"}]}
        assert unknown.status_code == 404 and model.json()["aliases"] == {"champion": "1.1.0"}


class TestApprovalOverHttp:
    async def test_only_a_key_with_models_approve_approves(self, stack: EmbeddedStack, team: Team) -> None:
        t = team.name
        await register(stack, team.writer, t, "m", "1.0.0")
        async with acting_as(stack, "registration", team.writer) as http:
            by_writer = await http.put(f"/v1/models/{t}/m/versions/1.0.0/approval", json={"status": "approved"})
        async with acting_as(stack, "registration", team.approver) as http:
            approved = await http.put(
                f"/v1/models/{t}/m/versions/1.0.0/approval", json={"status": "approved", "comment": "reviewed"}
            )
        assert by_writer.status_code == 403
        assert approved.status_code == 200 and approved.json()["approval"]["status"] == "approved"
        assert approved.json()["approval"]["comment"] == "reviewed"


class TestModelMetadataOverHttp:
    async def test_the_model_resource_shows_its_own_metadata(self, stack: EmbeddedStack, team: Team) -> None:
        t = team.name
        metadata = {
            "description": "Scores card payments for fraud",
            "owners": [{"name": "Alice", "email": "alice@example.com"}],
            "documentation": "## Intended use\n\nCard-not-present payments.",
            "links": {"repository": "https://git.example.com/fraud/card"},
        }
        async with acting_as(stack, "registration", team.writer) as http:
            await register(stack, team.writer, t, "m", "1.0.0", description="version text")
            updated = await http.patch(f"/v1/models/{t}/m", json=metadata)
            await register(stack, team.writer, t, "m", "2.0.0", description="newer version text")
            bad_link = await http.patch(f"/v1/models/{t}/m", json={"links": {"x": "javascript:alert(1)"}})
        assert updated.status_code == 200 and bad_link.status_code == 422
        async with acting_as(stack, "query", team.writer) as http:
            model = (await http.get(f"/v1/models/{t}/m")).json()
        assert model["description"] == metadata["description"] and model["latest_version"] == "2.0.0"
        assert (model["owners"], model["links"]) == (metadata["owners"], metadata["links"])


class TestLineage:
    async def test_the_walk_shows_parents_and_children_only_as_far_as_the_reader_may_read(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        base, t = f"base-{uuid.uuid4().hex[:6]}", team.name
        base_key = await team_key(stack, base, ADMIN_SCOPES)
        await register(stack, base_key, base, "foundation", "1.0.0")
        async with acting_as(stack, "registration", base_key) as http:
            assert (await http.put(f"/v1/models/{base}/foundation/shares/{t}")).status_code == 200
        source = {"run_id": "run-7", "code_commit": "abc1234", "datasets": [{"uri": "s3://data/cards"}]}
        parent = {"team": base, "name": "foundation", "version": "1.0.0"}
        await register(stack, team.writer, t, "tuned", "1.0.0", source=source, parent=parent)
        await register(
            stack, team.writer, t, "tuned-small", "1.0.0", parent={"team": t, "name": "tuned", "version": "1.0.0"}
        )
        async with acting_as(stack, "registration", base_key) as http:
            assert (await http.delete(f"/v1/models/{base}/foundation/shares/{t}")).status_code == 204
        async with acting_as(stack, "query", team.writer) as http:
            lineage = (await http.get(f"/v1/models/{t}/tuned/versions/1.0.0/lineage")).json()
        assert lineage["version"]["source"]["run_id"] == "run-7"
        assert lineage["parents"] == [] and lineage["parents_truncated"]  # unshared since: no longer readable
        assert [c["name"] for c in lineage["children"]] == ["tuned-small"]
        async with acting_as(stack, "query", base_key) as http:
            theirs = (await http.get(f"/v1/models/{base}/foundation/versions/1.0.0/lineage")).json()
        assert theirs["children"] == []  # the fine-tuned model belongs to a team that did not share it


class TestLatestAndDelete:
    async def test_latest_skips_deprecated_and_a_deleted_version_is_gone_for_good(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        t = team.name
        for version in ("1.0.0", "2.0.0", "3.0.0"):
            await register(stack, team.writer, t, "m", version)
        async with acting_as(stack, "registration", team.writer) as http:
            await http.post(f"/v1/models/{t}/m/versions/3.0.0/lifecycle", json={"state": "deprecated"})
            deleted = await http.delete(f"/v1/models/{t}/m/versions/2.0.0")
        assert deleted.status_code == 204
        await register(stack, team.writer, t, "m", "2.0.0", expect=409)
        async with acting_as(stack, "query", team.writer) as http:
            latest = (await http.get(f"/v1/models/{t}/m/versions/latest")).json()["version"]
            with_deprecated = await http.get(f"/v1/models/{t}/m/versions/latest", params={"include_deprecated": True})
            gone = await http.get(f"/v1/models/{t}/m/versions/2.0.0")
            listed = [v["version"] for v in (await http.get(f"/v1/models/{t}/m/versions")).json()["items"]]
            active = await http.get(f"/v1/models/{t}/m/versions", params={"lifecycle": "active"})
            model = (await http.get(f"/v1/models/{t}/m")).json()
        assert (latest, with_deprecated.json()["version"], gone.status_code) == ("1.0.0", "3.0.0", 404)
        assert listed == ["3.0.0", "1.0.0"] and [v["version"] for v in active.json()["items"]] == ["1.0.0"]
        assert (model["latest_version"], model["version_count"]) == ("1.0.0", 2)


class TestSharesListed:
    async def test_the_owner_lists_its_shares_and_a_reader_cannot(self, stack: EmbeddedStack, team: Team) -> None:
        t, other = team.name, f"oth-{uuid.uuid4().hex[:6]}"
        other_key = await team_key(stack, other, ["models:read"])
        await register(stack, team.writer, t, "m", "1.0.0")
        async with acting_as(stack, "registration", team.writer) as http:
            await http.put(f"/v1/models/{t}/m/shares/{other}")
        async with acting_as(stack, "query", team.writer) as http:
            mine = await http.get(f"/v1/models/{t}/m/shares")
        async with acting_as(stack, "query", other_key) as http:
            theirs = await http.get(f"/v1/models/{t}/m/shares")
        assert mine.json() == {"items": [{"team": other}]} and theirs.status_code == 404


class TestCommandsOverKafka:
    async def test_an_alias_set_over_kafka_has_one_outcome_event_filed_under_the_model(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        t = team.name
        await register(stack, team.writer, t, "m", "1.0.0")
        command = command_event(
            messages.SET_ALIAS, {"team": t, "name": "m", "alias": "prod", "version": "1.0.0"}, token=team.writer
        )
        rejected = command_event(
            messages.SET_APPROVAL,
            {"team": t, "name": "m", "version": "1.0.0", "status": "approved"},
            token=team.writer,
        )
        records = [(*binary_record(c), f"{t}/m".encode()) for c in (command, rejected)]
        async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
            await publish_raw(stack.settings.kafka_bootstrap, "registry.commands", records)
            [alias_set] = await events.wait_for(caused_by(command.id))
            [refused] = await events.wait_for(caused_by(rejected.id))
        assert header(alias_set, "ce_type") == messages.ALIAS_SET and alias_set.key == f"{t}/m".encode()
        assert json.loads(alias_set.value)["version"] == "1.0.0"
        assert json.loads(refused.value)["reason"] == "forbidden"


class TestEveryNewCommandOverKafka:
    async def test_each_has_one_outcome_in_order_on_the_models_partition_and_in_the_audit_log(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        t = team.name
        for version in ("1.0.0", "2.0.0"):
            await register(stack, team.writer, t, "m", version)
        ref = {"team": t, "name": "m"}
        commands = [
            command_event(messages.SET_ALIAS, ref | {"alias": "candidate", "version": "2.0.0"}, token=team.writer),
            command_event(messages.REMOVE_ALIAS, ref | {"alias": "candidate"}, token=team.writer),
            command_event(messages.UPDATE_MODEL, ref | {"description": "over Kafka"}, token=team.writer),
            command_event(messages.SET_APPROVAL, ref | {"version": "2.0.0", "status": "rejected"}, token=team.approver),
            command_event(messages.DELETE_VERSION, ref | {"version": "2.0.0"}, token=team.writer),
        ]
        records = [(*binary_record(c), f"{t}/m".encode()) for c in commands]
        async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
            await publish_raw(stack.settings.kafka_bootstrap, "registry.commands", records)
            outcomes = [(await events.wait_for(caused_by(c.id)))[0] for c in commands]
        assert [header(o, "ce_type") for o in outcomes] == [
            messages.ALIAS_SET,
            messages.ALIAS_REMOVED,
            messages.MODEL_UPDATED,
            messages.VERSION_APPROVAL_CHANGED,
            messages.MODEL_VERSION_DELETED,
        ]
        assert len({o.partition for o in outcomes}) == 1 and [o.offset for o in outcomes] == sorted(
            o.offset for o in outcomes
        )
        types = {header(o, "ce_type") for o in outcomes}

        async def audited() -> set[str] | None:
            async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
                listed = (await http.get("/v1/audit", params={"team": t, "limit": 200})).json()["items"]
            found = {entry["type"] for entry in listed} & types
            return found if found == types else None

        await until(audited, what="the five outcome events in the team's audit log")
        async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
            assert (await http.get("/v1/audit/verify")).json()["ok"]
