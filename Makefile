# Set-up and the main jobs. `make demo` and `make test` work on a fresh clone:
# they create .venv in the repo root and install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is installed first so that the CPU build already on disk is used where
# it exists; override with e.g. `make test TORCH_SPEC='torch>=2.3'`.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.petcad-installed

.PHONY: all install demo test bench clean

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

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/petcad bench patches
	$(VENV)/bin/petcad bench model

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
