# Açık Kapı — the two commands: `make run` (whole system, one port) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# eventlet announces its own deprecation on every start; we chose it deliberately (nameko).
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: run run-all-in-one test lint venv lock clean token dlq db db-stop reports-rebuild

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -r requirements.lock
	@touch $(STAMP)

venv: $(STAMP)

## The whole system locally: seven service processes under supervisord, nginx on port 8000 in
## front, the embedded database (FerretDB, data in var/ferretdb) and RabbitMQ. Ctrl-C stops the
## services; the database and the broker keep running like any server (make db-stop).
run: $(STAMP)
	@scripts/ensure-rabbitmq.sh
	@scripts/ensure-ferretdb.sh
	@scripts/ensure-nginx.sh
	@mkdir -p var/sink
	@$(BIN)/python scripts/run_local.py

## A developer's shortcut: all seven services in one process on port 8000 (no nginx).
run-all-in-one: $(STAMP)
	@scripts/ensure-rabbitmq.sh
	@scripts/ensure-ferretdb.sh
	@mkdir -p var/sink
	$(BIN)/python -m services.all

## The embedded database server alone (built once into .tools/ with Go), and stopping it.
db:
	@scripts/ensure-ferretdb.sh
db-stop:
	@scripts/ensure-ferretdb.sh stop

## The test suite against the real broker and the real database server (and ruff).
test: $(STAMP)
	@scripts/ensure-rabbitmq.sh
	@scripts/ensure-ferretdb.sh
	@scripts/ensure-nginx.sh
	@scripts/ensure-chromium.sh
	@scripts/ensure-promtool.sh
	$(BIN)/ruff check .
	$(BIN)/python scripts/run_tests.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

## Re-pin every dependency from requirements.in.
lock:
	$(PYTHON) -m venv /tmp/acikkapi-lock && /tmp/acikkapi-lock/bin/pip install -q -r requirements.in
	/tmp/acikkapi-lock/bin/pip freeze --exclude-editable | grep -v '^pip==' > requirements.lock

## A staff token for local use: make token ROLE=expert UNIT=mersin_bb.roads USER_CODE=mbb-0020
## (INST=mezitli_bld limits an admin or coordinator to that institution)
token: $(STAMP)
	@$(BIN)/python -m services.common.auth mint --user $(or $(USER_CODE),dev) --role $(or $(ROLE),coordinator) $(if $(UNIT),--unit $(UNIT)) $(if $(INST),--institution $(INST))

## Dead letters: make dlq (list), make dlq ARGS="replay --all"
dlq: $(STAMP)
	$(BIN)/python -m services.common.dlq $(or $(ARGS),list)

## Rebuild reporting's summaries and buckets from its stored facts (reporting stopped first)
reports-rebuild: $(STAMP)
	$(BIN)/python -m services.reporting.rebuild

clean: db-stop
	rm -rf $(VENV) var .tools .pytest_cache .ruff_cache
