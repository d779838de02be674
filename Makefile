# Herald: `make dev` runs it locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev reset test lint typecheck pytest bench soak concurrency install clean package deploy

# The first run installs everything into .venv (a few minutes, once); pip shows each package.
$(STAMP): pyproject.toml requirements.txt
	@echo "==> installing Herald and its tools into $(VENV) (the first time takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on 'pip<26.3'  # chalice 1.34 requires pip<26.3
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "==> installed"

install: $(STAMP)

# Data (DynamoDB Local's tables) and the dev API key are kept in .herald/ between runs.
dev: $(STAMP)
	$(BIN)/python -m herald_local.stack

# Wipes make dev's data (not the dev API key); refused while make dev runs.
reset:
	$(PYTHON) -m herald_local.reset

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Three workers on a 2-core machine: a third of a test's time is waiting (on receivers, local
# stacks, the soak), and a third worker computes meanwhile (4:36 against 5:22 for two, the same
# suite back to back); `make pytest PYTEST_WORKERS=0` runs serially. Tests sharing a module's local stack
# or build stay on one worker (tests/conftest.py).
PYTEST_WORKERS ?= 3

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS)

# The quick checks first, so a lint or type error fails in seconds rather than after pytest.
test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# A stack of its own on loopback ports under mixed traffic: `make soak SOAK_MINUTES=60`.
SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

# The issue-13 races on a stack of its own: 1,500 event x handler under a failing receiver,
# 20 clients creating handlers at once.
concurrency: $(STAMP)
	$(BIN)/python -m bench.concurrency

clean:
	rm -rf $(VENV) .cache .herald .mypy_cache .ruff_cache .pytest_cache build

# Deployment (infra/README.md): `make package STAGE=prod`, `make deploy STAGE=prod DEPLOY_BUCKET=...`.
STAGE ?= dev
BUILD := build/$(STAGE)

package: $(STAMP)
	$(BIN)/python -m infra.package --stage $(STAGE) --out $(BUILD)

deploy: package
	@test -n "$(DEPLOY_BUCKET)" || { echo "DEPLOY_BUCKET=<S3 bucket for the Lambda zip> is required" >&2; exit 2; }
	aws cloudformation package --template-file $(BUILD)/sam.json --s3-bucket $(DEPLOY_BUCKET) \
		--output-template-file $(BUILD)/packaged.json --use-json
	aws cloudformation deploy --template-file $(BUILD)/packaged.json --stack-name herald-$(STAGE) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		$(if $(ALARM_EMAIL),--parameter-overrides AlarmEmail=$(ALARM_EMAIL))
