"""Documented enumerations and limits of the contract, served by ``GET /v1/meta``."""

from __future__ import annotations

FRAMEWORKS: tuple[str, ...] = (
    "catboost",
    "custom",
    "huggingface",
    "jax",
    "keras",
    "lightgbm",
    "onnx",
    "prophet",
    "pytorch",
    "scikit-learn",
    "spark-ml",
    "statsmodels",
    "tensorflow",
    "xgboost",
)
DEPLOYMENT_TARGETS: tuple[str, ...] = (
    "azure-ml",
    "batch",
    "bentoml",
    "databricks",
    "edge",
    "kserve",
    "kubernetes",
    "lambda",
    "ray-serve",
    "sagemaker",
    "seldon",
    "triton",
    "vertex-ai",
)
LIFECYCLE_STATES: tuple[str, ...] = ("active", "deprecated", "archived")
DEPLOYMENT_STATUSES: tuple[str, ...] = (
    "registered",
    "deploying",
    "deployed",
    "failed",
    "rolled_back",
    "retired",
)
DEFAULT_ARTIFACT_SCHEMES: tuple[str, ...] = ("s3",)
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_TAGS = 64
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
MAX_DESCRIPTION = 16_384
MAX_DOCUMENTATION = 65_536  # a model's markdown documentation, in characters
MAX_COMMENT = 1_024
MAX_OWNERS = 16
MAX_LINKS = 16
MAX_DATASETS = 32
MAX_LINEAGE_DEPTH = 32  # parent hops a lineage walk follows
MAX_LINEAGE_CHILDREN = 100  # derived versions a lineage answer lists
MAX_SIGNATURE_DEPTH = 16
MAX_SIGNATURE_VALUES = 5_000
# A provenance signature (an OpenSSF model-signing bundle): its JSON size, nesting and values. Its
# base64 payload (the in-toto statement listing every file) is the one long string it holds.
MAX_PROVENANCE_BYTES = 128 * 1024
MAX_PROVENANCE_DEPTH = 8
MAX_PROVENANCE_VALUES = 200
MAX_SIGNING_KEY_PEM = 4_096  # characters of a PEM public key (an EC P-384 key takes about 215)
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
