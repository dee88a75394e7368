# syntax=docker/dockerfile:1.7
# The query service. Build from the repository root (the uv workspace):
#   docker build -f deploy/docker/query.Dockerfile -t model-registry/query .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (a cached layer until uv.lock changes), then the code.
COPY pyproject.toml uv.lock ./
COPY contract/pyproject.toml contract/
COPY shared/pyproject.toml shared/
COPY services/registration/pyproject.toml services/registration/
COPY services/query/pyproject.toml services/query/
COPY services/deploy-tracker/pyproject.toml services/deploy-tracker/
COPY services/audit/pyproject.toml services/audit/
COPY deploy/local/pyproject.toml deploy/local/
COPY client/pyproject.toml client/
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --package registry-query --no-install-workspace
COPY contract contract
COPY shared shared
COPY services/query services/query
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --package registry-query --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 registry && useradd --system --uid 10001 --gid registry --no-create-home registry
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 LOG_FORMAT=json MALLOC_ARENA_MAX=2 \
    QUERY_HTTP_HOST=0.0.0.0 QUERY_HTTP_PORT=8080
# Never root; the code is owned by root, so the process cannot change it.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["python", "-m", "query"]
