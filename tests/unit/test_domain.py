import pytest
from pydantic import ValidationError

from registration import domain
from registry_contract import messages

pytestmark = pytest.mark.unit

VALID = {
    "team": "fraud",
    "name": "card-fraud-xgb",
    "version": "1.4.0",
    "framework": "xgboost",
    "artifact_uri": "s3://ml-models/fraud/card/1.4.0/model.tar.gz",
}


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


class TestRegisterValidation:
    def test_accepts_the_design_example(self) -> None:
        messages.RegisterModelVersion.model_validate(
            {
                **VALID,
                "deployment_targets": ["sagemaker", "kubernetes"],
                "tags": {"owner": "alice"},
                "metrics": {"auc": 0.931},
                "artifact_digest": "sha256:" + "a" * 64,
            }
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("team", "Fraud"),
            ("team", "-fraud"),
            ("team", "a" * 64),
            ("name", "card_fraud"),
            ("version", "1.4"),
            ("version", "v1.4.0"),
            ("framework", "caffe"),
            ("deployment_targets", ["mainframe"]),
            ("artifact_digest", "md5:abc"),
            ("tags", {"k": "v" * 257}),
            # Keys MongoDB cannot store: they would fail every retry of the batch that carried them.
            ("tags", {"a\u0000b": "v"}),
            ("tags", {"$where": "v"}),
            ("parameters", {"a.b": "v"}),
            ("metrics", {"a\u0000b": 1.0}),
            ("metrics", {"auc": float("nan")}),
            ("signature", {"inputs": {"a\u0000b": 1}}),
            ("signature", {"$set": {}}),
            ("signature", {"n": 2**64}),
            ("signature", {"deep": nested(40)}),
            ("signature", {"many": list(range(10_000))}),
        ],
    )
    def test_rejects_each_broken_rule(self, field: str, value: object) -> None:
        with pytest.raises(ValidationError) as caught:
            messages.RegisterModelVersion.model_validate({**VALID, field: value})
        assert caught.value.errors()[0]["loc"][0] == field

    def test_refuses_unknown_fields(self) -> None:
        with pytest.raises(ValidationError):
            messages.RegisterModelVersion.model_validate({**VALID, "status": "deployed"})


class TestArtifactUri:
    @pytest.mark.parametrize(
        "uri",
        ["s3://ml-models/a", "s3://my.bucket-1/x/y.tar.gz"],
    )
    def test_accepts_s3_objects(self, uri: str) -> None:
        domain.check_artifact_uri(uri, schemes=["s3"])

    @pytest.mark.parametrize(
        "uri",
        [
            "gs://bucket/key",
            "s3://bucket",
            "s3://bucket/",
            "s3://Bucket/key",
            "s3://ab/key",
            "s3://my..bucket/key",
            "s3://192.168.1.1/key",
            "https://example.com/model",
        ],
    )
    def test_refuses_other_schemes_bad_buckets_and_empty_keys(self, uri: str) -> None:
        with pytest.raises(domain.InvalidCommand):
            domain.check_artifact_uri(uri, schemes=["s3"])

    def test_other_schemes_can_be_enabled_by_configuration(self) -> None:
        domain.check_artifact_uri("gs://bucket/key", schemes=["s3", "gs"])


class TestLifecycle:
    @pytest.mark.parametrize(
        ("start", "end"), [("active", "deprecated"), ("deprecated", "active"), ("active", "archived")]
    )
    def test_allows_documented_moves(self, start: str, end: str) -> None:
        domain.check_lifecycle_move(start, end)

    @pytest.mark.parametrize(("start", "end"), [("archived", "active"), ("active", "active")])
    def test_refuses_other_moves(self, start: str, end: str) -> None:
        with pytest.raises(domain.Conflict):
            domain.check_lifecycle_move(start, end)
