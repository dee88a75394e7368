"""The HTTP read API: models, versions, deployments, lineage, cards and metadata."""
