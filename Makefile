# Two commands for a fresh machine: `make serve` (the service) and `make test` (the test suite).
# Both set up .venv themselves. torch is pinned and installed first, so pip never pulls a CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: serve test install clean

$(BIN)/restora: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[models,embedded-redis,eval,test]"
	touch $(BIN)/restora

install: $(BIN)/restora

serve: install
	$(BIN)/restora serve

test: install
	$(BIN)/python -m pytest -q; status=$$?; [ $$status -eq 5 ] && echo "pytest: no tests collected" && exit 1; exit $$status

clean:
	rm -rf $(VENV) restora-data
