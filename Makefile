# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_ROWS ?= 20000
# gunicorn.conf.py: gthread workers, the timeout of a large download, and the hooks that
# start and stop each worker's exports. More workers: WEB_CONCURRENCY=3 make run.
GUNICORN_OPTS ?=

.PHONY: run test bench install install-test migrate lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py seed_corporate_park --rows $(DEMO_ROWS) --if-empty
	@echo "Demo user 'demo', API token:"
	@$(BIN)/python manage.py create_export_user demo | tail -n 1
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	BIND=$(HOST):$(PORT) $(BIN)/gunicorn backend.wsgi:application --config gunicorn.conf.py $(GUNICORN_OPTS)

test: install-test
	$(BIN)/python -m pytest

# `make bench`: 100,000 rows; BENCH_ROWS=1000000, or BENCH_ROWS=100000,1000000 for both sizes
# and their RSS difference; BENCH_ARGS for more options (python bench/bench.py --help).
BENCH_ROWS ?= 100000
BENCH_ARGS ?=
bench: install-test
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/bench.py --rows $(BENCH_ROWS) $(BENCH_ARGS)

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
