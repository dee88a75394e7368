"""Judged queries: what a user types, and which models of the catalogue answer it.

Relevance is decided by what a model is about (its family, its variant, its framework or
deployment state), never by what the index returned: a model of a relevant family has grade 1,
the variant the query names grade 2. Queries cover plain, misspelled, partial (typed so far),
phrase, field-scoped and natural-language searches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.relevance.catalogue import CatalogueModel

Condition = Callable[[CatalogueModel], bool]


@dataclass(frozen=True)
class Judged:
    """A query and the families (optionally a variant, or a condition) that are relevant to it."""

    query: str
    kind: str
    families: tuple[str, ...]
    variant: str | None = None
    where: Condition | None = None

    def grade(self, model: CatalogueModel) -> int:
        """0 (not relevant), 1 (relevant) or 2 (the very model the query names)."""
        if model.family.slug not in self.families or (self.where is not None and not self.where(model)):
            return 0
        return 2 if model.variant == self.variant else 1

    def relevant(self, catalogue: list[CatalogueModel]) -> dict[str, int]:
        """Model id → grade, for every relevant model of ``catalogue``."""
        grades = {str(m.model["_id"]): self.grade(m) for m in catalogue}
        return {model_id: grade for model_id, grade in grades.items() if grade}


def framework(name: str) -> Condition:
    return lambda m: m.model["framework"] == name


def deployed_in(environment: str) -> Condition:
    return lambda m: any((v["environments"].get(environment) or {}).get("status") == "deployed" for v in m.versions)


def any_lifecycle(state: str) -> Condition:
    return lambda m: any(v["lifecycle"] == state for v in m.versions)


def target(name: str) -> Condition:
    return lambda m: name in m.model["deployment_targets"]


def tag(key: str, value: str) -> Condition:
    return lambda m: m.model["tags"].get(key) == value


J = Judged
JUDGED: tuple[Judged, ...] = (
    # plain
    J("credit card fraud", "plain", ("card-fraud-detector",)),
    J("card fraud detection emea", "plain", ("card-fraud-detector",), "emea"),
    J("customer churn", "plain", ("churn-predictor",)),
    J("churn telecom subscribers", "plain", ("churn-predictor",), "telecom"),
    J("demand forecasting", "plain", ("demand-forecaster",)),
    J("sentiment of german reviews", "plain", ("review-sentiment-classifier",), "de"),
    J("product image classification", "plain", ("product-image-classifier",)),
    J("network traffic anomalies", "plain", ("network-anomaly-detector",)),
    J("credit scorecard probability of default", "plain", ("credit-scoring",)),
    J("money laundering", "plain", ("aml-transaction-monitor",)),
    J("customer lifetime value", "plain", ("customer-lifetime-value",)),
    J("recommend products", "plain", ("product-recommender",)),
    J("hospital readmission", "plain", ("readmission-risk",)),
    J("assembly line defects", "plain", ("defect-detector",)),
    # misspelled
    J("fraud detecton", "misspelled", ("card-fraud-detector",)),
    J("recomendation", "misspelled", ("product-recommender",)),
    J("sentimnt analysis", "misspelled", ("review-sentiment-classifier",)),
    J("forcasting demand", "misspelled", ("demand-forecaster",)),
    J("anomally detection", "misspelled", ("network-anomaly-detector", "log-anomaly-detector")),
    J("readmision risk", "misspelled", ("readmission-risk",)),
    J("malwre", "misspelled", ("malware-classifier",)),
    J("chargeback predicton", "misspelled", ("chargeback-predictor",)),
    # partial: typed so far
    J("chur", "prefix", ("churn-predictor",)),
    J("credit sco", "prefix", ("credit-scoring",)),
    J("toxi", "prefix", ("toxicity-filter",)),
    J("delivery et", "prefix", ("delivery-eta-estimator",)),
    J("spelling corr", "prefix", ("spelling-corrector",)),
    # phrases
    J('"lifetime value"', "phrase", ("customer-lifetime-value",)),
    J('"account takeover"', "phrase", ("account-takeover-detector",)),
    J('"support tickets"', "phrase", ("support-ticket-router",)),
    J('"price elasticity" competitor', "phrase", ("dynamic-pricing",)),
    # field-scoped
    J("framework:prophet forecast", "field", ("demand-forecaster",), where=framework("prophet")),
    J("team:security anomaly", "field", ("network-anomaly-detector", "log-anomaly-detector")),
    J("churn status:deployed env:prod", "field", ("churn-predictor",), where=deployed_in("prod")),
    J("sentiment framework:huggingface", "field", ("review-sentiment-classifier",), where=framework("huggingface")),
    J("fraud tag:domain=payments", "field", ("card-fraud-detector",), where=tag("domain", "payments")),
    J("target:edge defects", "field", ("defect-detector",), where=target("edge")),
    J("lifecycle:deprecated ocr", "field", ("document-ocr",), where=any_lifecycle("deprecated")),
    # natural language
    J("which model flags suspicious logins", "natural", ("account-takeover-detector",)),
    J("predict patients missing appointments", "natural", ("no-show-predictor",)),
    J("learning to rank search results", "natural", ("search-ranker",)),
    J("tumour segmentation mri", "natural", ("medical-image-segmentation",)),
    # other words than the description's, and facts (framework, target) as free text
    J("customer attrition", "synonym", ("churn-predictor",)),
    J("subscription cancellation", "synonym", ("churn-predictor",)),
    J("fake payments", "synonym", ("card-fraud-detector",)),
    J("visual inspection of parts", "synonym", ("defect-detector",)),
    J("hate speech", "synonym", ("toxicity-filter",)),
    J("loan risk", "synonym", ("credit-scoring", "collections-prioritizer")),
    J("xgboost fraud", "facts", ("card-fraud-detector",), where=framework("xgboost")),
    J("kserve recommender", "facts", ("product-recommender",), where=target("kserve")),
)
