# Tierstream - the two commands that matter are `make demo` and `make test` (see README.md).
.PHONY: install demo test unit contract integration e2e lint format docs up down status

install:
	@bash deploy/local/bootstrap.sh

demo: install            ## the main job: the whole stack with the Online Retail data set loaded
	@uv run --frozen tierstream demo

test: install            ## every tier, real Kafka + PostgreSQL started (and stopped) by the project
	@bash deploy/local/run-tests.sh

unit: install
	@uv run --frozen pytest -m unit -q

contract: install
	@uv run --frozen pytest -m contract -q

integration: install
	@uv run --frozen pytest -m "integration or fault" -q

e2e: install
	@uv run --frozen pytest -m e2e -q

lint: install
	@uv run --frozen ruff check . && uv run --frozen ruff format --check .

format: install
	@uv run --frozen ruff check --fix . && uv run --frozen ruff format .

docs: install            ## regenerate docs/asyncapi.yaml and docs/events.md from the event registry
	@uv run --frozen python -m shared.events.catalog

up: install
	@uv run --frozen tierstream up

down:
	@uv run --frozen tierstream down

status:
	@uv run --frozen tierstream status
