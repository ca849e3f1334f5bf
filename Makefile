# The two commands of README.md: `make up` (stack + console with demo data) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PRODUCTS ?= 5000
# The local stack runs with DEBUG's development defaults (dev secret key, local hosts);
# production leaves it unset and configures the secure settings (README, Configuration).
export DJANGO_DEBUG ?= true

.PHONY: up down status test venv migrate bootstrap browser bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

bootstrap: migrate
	$(PY) manage.py bootstrap --demo-users

up: venv
	devstack/up
	$(MAKE) --no-print-directory bootstrap
	$(PY) manage.py seed_catalog --if-empty --products $(DEMO_PRODUCTS) --seed 1
	$(PY) manage.py collectstatic --noinput -v 0
	SEARCHSYNC_PORT=$(PORT) devstack/console start
	@echo
	@echo "searchsync console: http://127.0.0.1:$(PORT)/   (admin/admin, admin2/admin2, operator/operator)"
	@echo "API docs:           http://127.0.0.1:$(PORT)/api/docs/"
	@echo "stop with:          make down"

down:
	-devstack/console stop
	devstack/down

status:
	-devstack/console status
	devstack/status

# Browser tests drive Debian's Chromium through Playwright's Python package.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

test: venv browser
	devstack/up
	$(VENV)/bin/pytest

bench: venv
	devstack/up
	$(PY) bench/pipeline_freshness.py
