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

.PHONY: demo test lint sysdeps bench clean-venv

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, from the local CPU wheel, so nothing pulls a CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all,dev]'
	@touch $@

# Debian packages used by music renders and the browser test; skipped when present or without root.
sysdeps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (sudo apt-get install$$missing)"; fi; fi

demo: $(VENV)/.installed
	$(VENV)/bin/foley generate "$(PROMPT)" -d 5 --seed 2 --plot -o $(OUT)
	@if command -v aplay >/dev/null && aplay -l >/dev/null 2>&1; then aplay -q $(OUT); \
	elif command -v ffplay >/dev/null; then ffplay -nodisp -autoexit -loglevel quiet $(OUT); \
	else echo "no sound device here: listen to $(OUT) (spectrogram: $(OUT:.wav=.png))"; fi

test: $(VENV)/.installed sysdeps
	$(VENV)/bin/ruff check foley tests bench recipes
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check foley tests bench recipes

bench: $(VENV)/.installed
	$(PY) bench/run_all.py
