# `make test` and `make report` work on a fresh machine with Python 3.11+:
# the first run creates .venv and installs the project into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SEED   ?= 2026
OUT    ?= build/report
# Editions of the report and the handout: English and Chinese.
LANGS  ?= en,zh

.PHONY: test report handout quick bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

report: $(STAMP)
	$(BIN)/initproof report --seed $(SEED) --out $(OUT) --lang $(LANGS) --html

handout: $(STAMP)
	$(BIN)/initproof handout --seed $(SEED) --out build/handout --lang $(LANGS) --html

quick: $(STAMP)
	$(BIN)/initproof report --seed $(SEED) --out $(OUT) --quick

bench: $(STAMP)
	$(BIN)/initproof bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf build $(VENV)
