# Parley — the two commands the README promises, and a few more.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-test worker beat bench bench-im chaos clean messages

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-base: requirements/base.txt requirements/production.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements/production.txt
	touch $@

$(VENV)/.installed-test: requirements/test.txt $(VENV)/.installed-base
	$(BIN)/pip install -q -r requirements/test.txt
	touch $@

install: $(VENV)/.installed-base
install-test: $(VENV)/.installed-test

## Set up and run Parley on the embedded defaults (SQLite, in-memory layers): http://127.0.0.1:8000/
run: install
	$(BIN)/python manage.py run --host $(HOST) --port $(PORT)

## Set up and run the whole test suite (uses DATABASE_URL / REDIS_URL when set).
test: install-test
	$(BIN)/python -m pytest

## Lint: ruff, migrations in step with the models, and the app boundaries (import-linter contracts in pyproject.toml).
lint: install-test
	@test -z "$$(git ls-files -- .venv)" || { echo "lint: .venv is tracked (a worktree's link to the shared virtualenv); run: git rm --cached .venv"; exit 1; }
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports --no-logo

## Translations (docs/i18n.md): collect every marked text into locale/zh_Hans/LC_MESSAGES/django.po,
## then compile the .mo that is committed beside it. Fill in the new empty msgstr entries in between.
MESSAGES_IGNORE := --ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=docs --ignore=deploy --ignore=static
messages: install
	$(BIN)/python manage.py makemessages -l zh_Hans --no-location --no-wrap --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l zh_Hans $(MESSAGES_IGNORE)

worker: install
	$(BIN)/celery -A config worker -P threads -c 32 -Q default,llm,webhooks -l INFO

beat: install
	$(BIN)/celery -A config beat -l INFO

## Production-shape benchmark on this machine (needs PostgreSQL + Redis; see bench/README.md).
bench: install-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/im_latency.py $(BENCH_IM_ARGS)

bench-im: install-test
	$(BIN)/python bench/im_latency.py $(BENCH_IM_ARGS)

## Fault suite on the production shape, its own PostgreSQL and Redis on loopback (docs/reliability.md):
## lost / duplicated replies and recovery times per fault. CHAOS_ARGS="--fast" for the CI cases.
chaos: install-test
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var/staticfiles .pytest_cache .ruff_cache
