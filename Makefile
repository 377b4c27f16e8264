# Set-up on a fresh machine: a virtual environment, the CPU build of torch where none is installed, the package.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1

.PHONY: install demo test test-all browser-deps lint mutation clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(PY) -m arcaudio demo --out demo_out

test: install
	$(PY) -m pytest -q

# the browser test drives headless Chromium from Debian's packages: installed here where missing
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver)

test-all: install browser-deps
	$(PY) -m pytest -q -m ""

# mutants of flow.py, sampling.py and the ARC losses / stage against the tests that cover them (pyproject's
# [tool.mutmut]); slow (tens of minutes on 2 cores), not part of `make test`. Survivors: `$(VENV)/bin/mutmut results`
mutation: install
	$(PY) -m pip install -q "mutmut>=3.3"
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $${MUTATION_JOBS:-2}
	$(PY) scripts/mutation_report.py

lint: install
	$(VENV)/bin/ruff check arcaudio tests scripts

clean:
	rm -rf $(VENV) demo_out mutants
