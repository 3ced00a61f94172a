# Two commands for a fresh machine: `make serve` (the service) and `make test` (the test suite).
# Both set up .venv themselves. torch and torchvision are pinned and installed first, as the pair that imports together.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1

# Debian packages the test suite drives for real: FFmpeg (video evaluation baselines), Chromium (web page test).
SYSTEM_PACKAGES := ffmpeg chromium chromium-driver

.PHONY: serve test install system-deps clean

$(BIN)/restora: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[models,embedded-redis,eval,test]"
	touch $(BIN)/restora

install: $(BIN)/restora

system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

serve: install
	$(BIN)/restora serve

test: install system-deps
	$(BIN)/python -m pytest -q; status=$$?; [ $$status -eq 5 ] && echo "pytest: no tests collected" && exit 1; exit $$status

clean:
	rm -rf $(VENV) restora-data
