# The two commands: `make run` (the fleet on http://localhost:3000) and `make test`.
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: bootstrap browser run test lint typecheck deploy-check unit integration e2e chaos contracts bench clean

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	$(VENV)/python -m devstack up

test: bootstrap browser lint typecheck deploy-check
	$(VENV)/pytest $(PYTEST_ARGS)

# Debian's Chromium, for the web client's browser tests.
browser:
	scripts/install_chromium.sh

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck:
	$(VENV)/mypy

# Renders every compose profile and kustomize overlay and validates them, offline (docs/deploy.md).
deploy-check: bootstrap
	$(VENV)/pytest tests/deploy -q

unit: bootstrap
	$(VENV)/pytest -m "not integration and not e2e" $(PYTEST_ARGS)

integration: bootstrap
	$(VENV)/pytest -m integration $(PYTEST_ARGS)

e2e: bootstrap
	$(VENV)/pytest -m e2e $(PYTEST_ARGS)

# Real faults under load on servers of its own (docs/reliability.md); writes the table there.
chaos: bootstrap
	$(VENV)/python -m chaos --write docs/reliability.md

contracts: bootstrap
	$(VENV)/python -m contracts export docs/contracts

bench: bootstrap
	$(VENV)/python bench/outbox.py
	$(VENV)/python bench/event_loops.py
	$(VENV)/python bench/auth.py
	$(VENV)/python bench/chat_service.py
	cd bench/gateway && npm ci --silent --no-audit --no-fund
	$(VENV)/python bench/gateway/run.py

clean:
	rm -rf .run .mypy_cache .ruff_cache .pytest_cache
