# The two commands: `make run` (set up and run everything) and `make test`.
# With no environment: SQLite, in-process tasks, in-memory channel layer.
# With DATABASE_URL and REDIS_URL: PostgreSQL, Celery workers on Redis, Channels on Redis.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv lint typecheck bench bench-intake bench-open-orders bench-broker-faults bench-audit bench-reports bench-conditions clean browser-deps messages

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The demo: its steps neither need DJANGO_SECRET_KEY nor warn about it (trading/checks.py).
run: export DEMO_MODE = 1
run: venv
	mkdir -p var
	$(PY) manage.py ensure_database
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_instruments
	$(PY) manage.py demo_setup
	$(PY) manage.py collectstatic --noinput --verbosity 0
	DEMO_MODE=1 $(PY) manage.py run_system --host $(HOST) --port $(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

typecheck: venv
	$(VENV)/bin/mypy trading orders conditions brokers risk audit monitoring staff compliance

test: venv lint typecheck browser-deps
	mkdir -p var
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# Headless Chromium and a CJK font for the browser tests (tests/browser); they skip without them
# (fail under REQUIRE_SERVICES=1). Playwright only drives this chromium: no browser download.
browser-deps:
	-@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null) || \
	  echo "chromium not installed: browser tests will skip"

# Refresh the zh_Hans and en catalogues (locale/) after changing user-facing text or model labels.
messages: venv
	$(PY) manage.py staff_labels
	$(PY) manage.py makemessages -l zh_Hans -l en --no-location --no-obsolete --ignore='.venv/*' --ignore='var/*' \
	  --ignore='tests/*' --ignore='bench/*' --ignore='artifacts/*'
	$(PY) manage.py compilemessages --ignore='.venv/*'

bench: venv bench-open-orders bench-broker-faults bench-audit bench-reports bench-conditions
	$(PY) bench/order_intake.py
	$(PY) bench/risk_check.py
	BENCH_RISK_RULES=all $(PY) bench/order_intake.py

# One million audit events and 200,000 orders in PostgreSQL: the compliance pages, the CSV export's
# memory, verify_audit's rate (BENCH_REUSE=1 keeps the filled database of an earlier run).
bench-audit: venv
	$(PY) bench/audit_scale.py

# The trading reports (compliance/trading_reports.py) over 500,000 orders in PostgreSQL: time, queries
# and peak Python allocation for one day, a month and the whole range (BENCH_REUSE=1 keeps the data).
bench-reports: venv
	$(PY) bench/trading_reports.py

# The whole system (make run) with 0, 1,000 and 10,000 resting orders, on SQLite and PostgreSQL.
bench-open-orders: venv
	mkdir -p var
	$(PY) bench/open_orders.py

# 10,000 orders through the whole system on PostgreSQL against a paper broker failing 10 % of its
# calls; reconciliation until quiet; success rate, wrong states, duplicates, lost fills.
bench-broker-faults: venv
	mkdir -p var
	$(PY) bench/broker_faults.py

# 10,000 ACTIVE conditional orders over 50 symbols: evaluation per quote in one process
# (bench/conditions.py), then 200 quotes/s through the whole system on PostgreSQL + Redis with Celery
# workers (bench/conditional_orders.py): evaluation cost per quote, quote-to-child latency, exactly once.
bench-conditions: venv
	mkdir -p var
	$(PY) bench/conditions.py
	$(PY) bench/conditional_orders.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
