# gridctl: the two quick-start commands are `make demo` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup system-deps demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## setup: create .venv and install gridctl with its test tools
setup: $(BIN)/.installed

## system-deps: Debian packages the tests use (InfluxDB 1.x server, systemd-analyze)
system-deps:
	bash scripts/install-system-deps.sh

## demo: the main job on its embedded default: emulated Misono devices + the controller
demo: setup
	$(BIN)/gridctl run configs/misono.yaml --emulate --live

## test: everything CI runs (architecture contracts, schema, unit, integration, fault tests)
test: setup system-deps
	$(BIN)/lint-imports
	$(BIN)/pytest

## bench: print the benchmark figures (never asserted by tests)
bench: setup
	$(BIN)/python bench/optimizer.py --quick

clean:
	rm -rf $(VENV) var .pytest_cache
