# The two commands of README.md: `make up` (stack + console with demo data) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PRODUCTS ?= 5000
# The local stack runs with DEBUG's development defaults (dev secret key, local hosts);
# production leaves it unset and configures the secure settings (README, Configuration).
export DJANGO_DEBUG ?= true

.PHONY: up demo-orders demo-orders-writes down status test test-unit test-default test-elasticsearch test-opensearch3 test-cluster venv migrate bootstrap browser bench

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

# The search node `make up` starts follows SEARCH_ENGINE / SEARCH_URL: Elasticsearch 7.17 for
# SEARCH_ENGINE=elasticsearch, OpenSearch 3.x for an OpenSearch URL on port 9202, else 2.19.
SEARCH_ENGINE ?= opensearch
SEARCH_URL ?= http://127.0.0.1:9200
SEARCH_SERVICE := $(if $(filter elasticsearch,$(SEARCH_ENGINE)),elasticsearch,$(if $(findstring :9202,$(SEARCH_URL)),opensearch3,opensearch))
export SEARCH_ENGINE SEARCH_URL

up: venv
	devstack/up postgres redis kafka $(SEARCH_SERVICE)
	$(MAKE) --no-print-directory bootstrap
	$(PY) manage.py seed_catalog --if-empty --products $(DEMO_PRODUCTS) --seed 1
	$(MAKE) --no-print-directory demo-orders
	$(PY) manage.py collectstatic --noinput -v 0
	SEARCHSYNC_PORT=$(PORT) devstack/console start
	$(MAKE) --no-print-directory demo-orders-writes
	@echo
	@echo "searchsync console: http://127.0.0.1:$(PORT)/   (admin/admin, admin2/admin2, operator/operator)"
	@echo "API docs:           http://127.0.0.1:$(PORT)/api/docs/"
	@echo "stop with:          make down"

# The second demo source, not Django: a shop's orders table written from Node and plain SQL, each
# write calling searchsync_emit in its transaction, indexed by a blueprint declared in files.
DEMO_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://searchsync:searchsync@127.0.0.1:5432/searchsync)
ORDERS := examples/orders

$(ORDERS)/node_modules/.installed: $(ORDERS)/package-lock.json
	cd $(ORDERS) && npm ci --no-audit --no-fund --silent
	touch $@

demo-orders: $(ORDERS)/node_modules/.installed
	$(PY) manage.py outbox install --source default
	PGOPTIONS="-c client_min_messages=warning" psql "$(DEMO_DATABASE_URL)" -q -v ON_ERROR_STOP=1 -f $(ORDERS)/schema.sql
	$(PY) manage.py blueprints propose orders --from $(ORDERS)/blueprint
	$(PY) manage.py blueprints enable orders

# Written once the console's workers run, so the demo's orders are indexed as they are written.
demo-orders-writes: $(ORDERS)/node_modules/.installed
	DATABASE_URL="$(DEMO_DATABASE_URL)" node $(ORDERS)/writer.js --if-empty --orders 200
	@if [ "$$(psql "$(DEMO_DATABASE_URL)" -tAc "SELECT count(*) FROM orders WHERE customer = 'Alan Turing'")" = 0 ]; then \
	  psql "$(DEMO_DATABASE_URL)" -q -o /dev/null -v ON_ERROR_STOP=1 -f $(ORDERS)/demo.sql; fi

down:
	-devstack/console stop
	devstack/down

status:
	-devstack/console status
	devstack/status

# Browser tests drive Debian's Chromium through Playwright's Python package.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

# `make test`: the whole suite on the default engine (OpenSearch 2.19), then the engine
# contract tests and the drills on Elasticsearch 7.17 and on OpenSearch 3.x side by side, then
# the drills on the three-node cluster and the broker restart. The later stages' nodes start
# while the first stage runs; the time of each stage is printed at the end (tests/run_stages.sh).
test: venv browser
	MAKE="$(MAKE)" bash tests/run_stages.sh

# `make test-unit`: every test that needs no service (a few seconds).
test-unit: venv
	$(VENV)/bin/pytest -q tests/unit

# The default suite runs in TEST_WORKERS pytest-xdist workers (config/settings_test.py: a lane
# each). Its drills stop and start their search node, so every worker has a node of its own
# (OpenSearch 2.19, os-test on 9203, os-test-b on 9204), a Redis database of its own (1, 2) and a
# test database of its own: a console from `make up` on 9200 and Redis database 0 stays green.
TEST_WORKERS ?= 2
TEST_NODES := os-test=http://127.0.0.1:9203 os-test-b=http://127.0.0.1:9204

test-default: venv browser $(ORDERS)/node_modules/.installed
	devstack/up postgres redis kafka
	DEVSTACK_OPENSEARCH_NAME=os-test DEVSTACK_OPENSEARCH_PORT=9203 DEVSTACK_OPENSEARCH_HEAP=768m devstack/up opensearch
	$(if $(filter 1,$(TEST_WORKERS)),,DEVSTACK_OPENSEARCH_NAME=os-test-b DEVSTACK_OPENSEARCH_PORT=9204 DEVSTACK_OPENSEARCH_HEAP=768m devstack/up opensearch)
	SEARCH_ENGINE=opensearch SEARCHSYNC_TEST_SEARCH_SERVICE=opensearch SEARCHSYNC_TEST_SEARCH_NODES="$(TEST_NODES)" \
	  SEARCHSYNC_TEST_REDIS_DB=1 $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25

# On Elasticsearch and OpenSearch 3 the tests that exercise the engine run: the adapter
# contract, convergence and replay, the search node's outage, 429 backpressure, deletes and
# gc_deletes, poison messages and the document writer, backfills, cutovers, revisions validated on
# a scratch index, reconciliation and the second entity. The console, API and Debezium tests do
# not depend on the engine and run once, in the default suite.
ENGINE_TESTS := tests/test_engine_adapter_contract.py tests/test_pipeline_convergence.py \
	tests/test_search_node_outage_and_consumer_kill.py tests/test_backpressure.py tests/test_deletes.py \
	tests/test_poison_and_dead_letters.py tests/test_document_writer.py tests/test_backfills.py tests/test_cutover.py \
	tests/test_revisions.py tests/test_reconciliation.py tests/test_second_entity_through_the_public_api.py \
	tests/test_declared_blueprints.py
ENGINE_PYTEST := $(VENV)/bin/pytest -m "not browser" -k "not debezium" --durations=5 $(ENGINE_TESTS)

test-elasticsearch: venv $(ORDERS)/node_modules/.installed
	devstack/up postgres redis kafka elasticsearch
	SEARCH_ENGINE=elasticsearch SEARCH_URL=http://127.0.0.1:9201 SEARCHSYNC_TEST_SEARCH_SERVICE=elasticsearch \
	  SEARCHSYNC_TEST_REDIS_DB=3 $(ENGINE_PYTEST)

test-opensearch3: venv $(ORDERS)/node_modules/.installed
	devstack/up postgres redis kafka opensearch3
	SEARCH_ENGINE=opensearch SEARCH_URL=http://127.0.0.1:9202 SEARCHSYNC_TEST_SEARCH_SERVICE=opensearch3 \
	  SEARCHSYNC_TEST_REDIS_DB=4 $(ENGINE_PYTEST)

# Node loss, a rolling restart and a backfill with a node away on the three-node OpenSearch
# cluster (devstack `opensearch-cluster`, HTTP 9220-9222; left running for reuse like the other
# engines' nodes, `make down` stops it), and a Kafka broker restart on a broker of the drill's own
# (19392, stopped by the drill). `-s` prints each drill's writes, retries and drift.
CLUSTER_URL := http://127.0.0.1:9220,http://127.0.0.1:9221,http://127.0.0.1:9222
CLUSTER_TESTS := tests/test_cluster.py tests/test_broker_restart.py

test-cluster: venv
	devstack/up postgres redis kafka opensearch-cluster
	LOG_LEVEL=WARNING SEARCH_ENGINE=opensearch SEARCH_URL=$(CLUSTER_URL) SEARCHSYNC_TEST_REDIS_DB=5 $(VENV)/bin/pytest -m cluster -s --durations=0 $(CLUSTER_TESTS)

# The throughput ratios as two hosts on one machine: the node on core 0, ours on core 1 (--pin).
bench: venv
	devstack/up
	$(PY) bench/pipeline_freshness.py --pin
	$(PY) bench/backfill_throughput.py --pin --workers 1 --rows 300000
	$(PY) bench/commit_path.py
	$(PY) bench/cost_ladder.py
