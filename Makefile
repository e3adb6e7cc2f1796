# Two set-up commands for a fresh machine: `make demo` (main job) and `make test` (the test suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PROMPT ?= footsteps on gravel
OUT ?= out/demo.wav
APT_PKGS := fluidsynth fluid-soundfont-gm chromium chromium-driver
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

LOCK := requirements.lock
TORCH := 2.13.0
FIND_LINKS ?= $(PIP_FIND_LINKS)
# The suite in parallel processes (pytest-xdist; one test file per process, so a module's fixtures build once):
# 2 = the CI machine's cores. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: demo test lint sysdeps bench clean-venv lock test-latest

# Installs exactly the versions in requirements.lock (docs/install.md: why, and how to refresh it).
$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, from the local CPU wheel, so nothing pulls a CUDA build
	$(PIP) install -q "$$(grep -m1 '^torch==' $(LOCK))"
	$(PIP) install -q -r $(LOCK)
	$(PIP) install -q --no-deps -e .
	@touch $@

# Debian packages used by music renders and the browser test; skipped when present or without root.
# Then a PostgreSQL server for tests/test_server_pg.py (.ci/postgres.sh: installed and started as root).
sysdeps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (sudo apt-get install$$missing)"; fi; fi
	@bash .ci/postgres.sh

demo: $(VENV)/.installed
	$(VENV)/bin/foley generate "$(PROMPT)" -d 5 --seed 2 --plot -o $(OUT)
	@if command -v aplay >/dev/null && aplay -l >/dev/null 2>&1; then aplay -q $(OUT); \
	elif command -v ffplay >/dev/null; then ffplay -nodisp -autoexit -loglevel quiet $(OUT); \
	else echo "no sound device here: listen to $(OUT) (spectrogram: $(OUT:.wav=.png))"; fi

test: $(VENV)/.installed sysdeps
	$(VENV)/bin/ruff check foley tests bench recipes
	$(VENV)/bin/lint-imports
	$(PY) -m foley.numba_warm
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check foley tests bench recipes
	$(VENV)/bin/lint-imports

bench: $(VENV)/.installed
	$(PY) bench/run_all.py

# Refresh the lock to the newest versions pyproject.toml allows (then `make test`; commit both if it passes).
lock:
	@test -x .venv-tools/bin/uv || { python3 -m venv .venv-tools && .venv-tools/bin/pip install -q uv; }
	echo "torch==$(TORCH)+cpu" > .venv-tools/torch.txt
	.venv-tools/bin/uv pip compile pyproject.toml --extra all --extra dev --upgrade --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 $(if $(FIND_LINKS),--find-links $(FIND_LINKS)) \
	  -c .venv-tools/torch.txt --no-header -o $(LOCK).new
	{ echo "# Exact versions that make demo / make test install. Refresh: make lock (docs/install.md)."; \
	  cat $(LOCK).new; } > $(LOCK) && rm -f $(LOCK).new

# Early warning of dependency drift: a fresh venv with the newest versions pyproject allows, then the suite.
# Not part of .ci/run (CI must be deterministic). Result and date go to docs/install.md.
test-latest: sysdeps
	rm -rf .venv-latest && python3 -m venv .venv-latest
	.venv-latest/bin/pip install -q --upgrade pip
	# torch stays the locked CPU build (PyPI's newest is a multi-GB CUDA build); everything else goes newest
	grep -m1 '^torch==' $(LOCK) > .venv-latest/torch.txt
	.venv-latest/bin/pip install -q -r .venv-latest/torch.txt
	.venv-latest/bin/pip install -q --upgrade --upgrade-strategy eager -c .venv-latest/torch.txt -e '.[all,dev]'
	.venv-latest/bin/pip freeze --exclude-editable > .venv-latest/versions.txt
	@echo "newest allowed: $$(grep -E '^(transformers|diffusers|accelerate|numpy)==' .venv-latest/versions.txt | tr '\n' ' ')"
	.venv-latest/bin/ruff check foley tests bench recipes
	.venv-latest/bin/lint-imports
	.venv-latest/bin/python -m pytest
