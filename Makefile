# The two commands a newcomer needs: `make run` and `make test`. Everything else is for developers and CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint format bench worker beat venv deps dev-deps messages migrate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

# A local .env (git-ignored) for development: DEBUG on and a random secret, so manage.py works on its own too.
.env:
	@printf 'DEBUG=true\nSECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@echo "wrote .env (DEBUG=true, a random SECRET_KEY) for local development"

# Serve the product on 127.0.0.1:$(PORT) with the embedded SQLite database and in-process Celery.
run: $(VENV)/.deps .env
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo --members $${DEMO_MEMBERS:-300}
	@echo "Admin: http://127.0.0.1:$(PORT)/admin/   API docs: http://127.0.0.1:$(PORT)/api/docs/"
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The whole suite: SQLite without DATABASE_URL, the given database with it.
test: $(VENV)/.dev-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks against the configured database; one JSON line per benchmark.
bench: $(VENV)/.dev-deps
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

worker: $(VENV)/.deps
	$(BIN)/celery -A config worker --loglevel=INFO

beat: $(VENV)/.deps
	$(BIN)/celery -A config beat --loglevel=INFO

migrate: $(VENV)/.deps
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput

# Refresh the zh-hans catalogue after changing user-facing strings, then commit locale/.
messages: $(VENV)/.deps
	DEBUG=true $(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=benchmarks
	DEBUG=true $(BIN)/python manage.py compilemessages -l zh_Hans --ignore=.venv
