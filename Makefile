# Mercato: `make run` starts the whole system, `make test` runs every test.
# Both set up what is missing first (the virtualenv and the pinned packages).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install run migrate test faults lint format operator lock asyncapi bench bench-expiry clean

help:
	@echo "make run      start all seven processes (SQLite under var/, local RabbitMQ, demo data)"
	@echo "make test     every test against a real RabbitMQ and PostgreSQL (AMQP_URI, DATABASE_URL)"
	@echo "make faults   the fault suite: brokers restarted, processes killed; prints the counts"
	@echo "make lint     ruff and mypy"
	@echo "make migrate  upgrade every service's database to head"
	@echo "make bench    the buyer journey against a baseline measured in the same run"
	@echo "make bench-expiry   the expiry sweeps over 100,000 subscriptions on PostgreSQL (DATABASE_URL)"
	@echo "make operator NAME=… EMAIL=…   create an operator account"

# The virtualenv is rebuilt when the pinned versions or the package layout change.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(STAMP)

run: install
	$(PY) -m mercato_devrun

migrate: install
	$(VENV)/bin/mercato-migrate

operator: install
	$(VENV)/bin/mercato-create-operator --name "$(NAME)" --email "$(EMAIL)"

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The fault suite (tests/faults, docs/operations.md "Fault suite"): a RabbitMQ and a
# PostgreSQL of its own, restarted, and processes killed, under a stream of purchases;
# prints the table of what was lost or done twice (every count must be 0).
faults: install
	$(PY) -m pytest tests/faults $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/mercato libs/mercato_testing libs/mercato_devrun libs/mercato_subscribers libs/seller_interface services/catalog/catalog services/orders/orders \
	    services/supervision/supervision services/billing/billing \
	    services/provisioning/provisioning services/iam-agency/iam_agency gateway/gateway \
    simulators/cloud/cloud_simulator simulators/payments/payments_simulator

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

asyncapi: install
	$(PY) -m mercato.contracts.asyncapi

# Re-pin every package from requirements.in (needs the package index).
lock:
	$(PYTHON) -m venv /tmp/mercato-lock && /tmp/mercato-lock/bin/pip install -q -r requirements.in \
	    && /tmp/mercato-lock/bin/pip freeze --exclude-editable > requirements.txt && rm -rf /tmp/mercato-lock

clean:
	rm -rf var/*.sqlite3* .mypy_cache .ruff_cache

# The buyer's journey against a baseline measured in the same run (see bench/purchase.py).
bench: install
	$(PY) bench/purchase.py $(BENCH_ARGS)

# The expiry sweeps (orders' lifecycle, provisioning's instance actions at the reference
# seller app) over 100,000 subscriptions on PostgreSQL, against a batch of one measured
# in the same run (see bench/expiry_sweep.py).
bench-expiry: install
	$(PY) bench/expiry_sweep.py $(BENCH_ARGS)
