# `make lab`: set up .venv when needed, run every built program at the quick profile on
# the embedded data, and write the lab record. `make test`: same set-up, then lint and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
RUNS ?= runs
JOBS ?= 2

.PHONY: lab test install clean notebooks

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

lab: $(STAMP)
	$(BIN)/dlab run all --profile quick --jobs $(JOBS) --out $(RUNS) || test $$? -eq 1
	$(BIN)/dlab report $(RUNS)

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(RUNS) .pytest_cache
