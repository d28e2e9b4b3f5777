# Everything runs from the project's own virtualenv, .venv, which `make venv` creates from nothing
# (python3 with venv and pip is all a fresh machine needs). The install is redone only when
# pyproject.toml is newer than the stamp file inside .venv.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.make-stamp-installed

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv assets test run lint

venv: $(STAMP)

# GOV.UK Frontend's compiled assets for the web app, from npm at the version package-lock.json pins,
# into node_modules/ (git-ignored); redone only when package.json or the lock file changes.
NODE_STAMP := node_modules/.make-stamp-installed

assets: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

$(STAMP): pyproject.toml
	@if ! $(VPY) -c 'import sys' >/dev/null 2>&1; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv --clear $(VENV); \
	fi
	$(VPY) -m pip install --quiet --editable '.[dev]'
	@touch $(STAMP)

# The suite waits on real servers (Temporal, PostgreSQL, SMTP, chromium) far more than it computes:
# it runs in 4 processes (pytest-xdist; each starts its own servers on free ports), about 4 minutes against
# 14 in one (TEST_WORKERS=0).
TEST_WORKERS ?= 4

test: venv assets
	$(VPY) -m pytest -q -n $(TEST_WORKERS)

run: venv assets
	$(VENV)/bin/escalate up $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
