# Every target bootstraps .venv itself: pip installs a pinned uv, uv installs the locked workspace.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run observe test lint bench setup system-packages clean

.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: .uv/bin/uv uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml deploy/local/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

setup: .venv/.synced

run: setup
	.venv/bin/registry up

# The stack plus a real Prometheus (Debian: apt-get install prometheus) with the alert rules.
observe: setup
	.venv/bin/registry up --with-prometheus

# Prometheus (promtool) and Chromium (the console's browser tests) from Debian's packages when
# missing and root; else one line saying what to install.
system-packages:
	@tools/ensure-system-packages

# The linters, the type checker and the unit tests run beside the stack's tests (tools/run-tests).
test: setup system-packages
	tools/run-tests

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy contract/src shared/src services/*/src deploy/local/src client/src tests tools

bench: setup
	.venv/bin/python bench/registry_bench.py
	.venv/bin/python bench/security_bench.py
	.venv/bin/python bench/token_bench.py
	.venv/bin/python bench/deploy_bench.py
	.venv/bin/python bench/search_bench.py
	.venv/bin/python bench/console_bench.py
	.venv/bin/python bench/history_bench.py
	.venv/bin/python bench/projection_memory.py
	.venv/bin/python bench/soak.py
	.venv/bin/python bench/vs_mlflow.py

clean:
	rm -rf .venv .uv .data .pytest_cache .mypy_cache .ruff_cache
