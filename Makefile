# Set-up and the main jobs. `make demo` and `make test` work on a fresh clone:
# they create .venv in the repo root and install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is installed first so that the CPU build already on disk is used where
# it exists; override with e.g. `make test TORCH_SPEC='torch>=2.3'`.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.petcad-installed

.PHONY: all install browser demo readme-check test bench clean

all: test

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/petcad demo

# Runs the demo and compares the README's section between <!-- demo-table:begin --> and
# <!-- demo-table:end --> with the tables it printed (demo_out/README_table.md); exit 1 and a
# diff when they differ. Exact on the machine and thread count that made the README's tables.
readme-check: $(STAMP)
	$(VENV)/bin/petcad demo --no-progress --check-readme README.md

# Browser tests drive Debian's Chromium through Playwright (no browser download).
# As root with apt-get, `make test` installs it; otherwise those tests skip with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and cannot be installed here: browser tests will be skipped"; fi; }

test: $(STAMP) browser
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/petcad bench patches
	$(VENV)/bin/petcad bench model

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
