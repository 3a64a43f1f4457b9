# Açık Kapı — the two commands: `make run` (whole system, one port) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# eventlet announces its own deprecation on every start; we chose it deliberately (nameko).
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: run test lint venv lock clean token dlq

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -r requirements.lock
	@touch $(STAMP)

venv: $(STAMP)

## The whole system locally: all six services, embedded store, sample organisation, port 8000.
run: $(STAMP)
	@scripts/ensure-rabbitmq.sh
	@mkdir -p var/sink
	$(BIN)/python -m services.all

## The test suite against the real broker (and ruff).
test: $(STAMP)
	@scripts/ensure-rabbitmq.sh
	@scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -p no:cacheprovider

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

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
