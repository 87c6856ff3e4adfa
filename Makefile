# The two commands: `make run` (set up and run everything) and `make test`.
# With no environment: SQLite, in-process tasks, in-memory channel layer.
# With DATABASE_URL and REDIS_URL: PostgreSQL, Celery workers on Redis, Channels on Redis.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv lint typecheck bench bench-intake clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: venv
	mkdir -p var
	$(PY) manage.py ensure_database
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_instruments
	$(PY) manage.py demo_setup
	$(PY) manage.py run_system --host $(HOST) --port $(PORT)

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy trading orders brokers risk audit monitoring

test: venv lint typecheck
	mkdir -p var
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

bench: venv
	$(PY) bench/order_intake.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
