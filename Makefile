# Two commands for a newcomer: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: help run test lint bench clean
.DEFAULT_GOAL := help

help:
	@echo "make run    create .venv if needed, install, start MoneyBot (paper broker on real data, console chat;"
	@echo "            Telegram/Discord too when their tokens are in .env). Type /help in the chat, /quit to leave."
	@echo "make test   create .venv if needed, run the whole test suite (about 5 min, no network)"
	@echo "make lint   ruff over core bot tests bench"
	@echo "make bench  every benchmark in bench/, one after another (about 3 minutes)"
	@echo "make clean  remove .venv and build files (data/ keeps your trades: delete data/*.sqlite* to start afresh)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/moneybot run

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check core bot tests bench

bench: $(STAMP)
	for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
