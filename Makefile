# Two commands: `make demo` and `make test`. Both set up .venv first if it is missing.
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU wheel of this version is on local disk here; a GPU user installs their own torch first.
TORCH ?= torch==2.13.0

.PHONY: setup browser demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py workbench/datasets/_take.c Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/workbench demo

# The browser tests drive Debian's chromium (Playwright's own download is never used). As root
# with apt-get, install it when it is missing; otherwise they skip and say how (under CI=true they fail).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "no chromium: browser tests will skip (as root: apt-get install -y chromium)"; fi; }

# --wb-notebooks: nbval's full output comparison through workbench's sanitizers (docs/NOTEBOOKS.md),
# --wb-browser: each notebook once more in JupyterLab in chromium. tests/notebooks/ holds the
# plugin's own test notebooks, which tests/test_plugin.py runs in copies.
test: $(STAMP) browser
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest tests workbench notebooks --doctest-modules --wb-notebooks --wb-browser --wb-cell-timeout=300 --ignore=tests/notebooks -p no:cacheprovider

# The loader benchmark's real peers, without their declared dependencies (pyproject.toml's bench
# extra holds what they import): their metadata would replace the local torch and numpy.
PEERS ?= mosaicml-streaming==0.13.0 litdata==0.2.76

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m pip install --quiet --no-deps $(PEERS)
	$(PY) benchmarks/convert.py
	$(PY) benchmarks/loaders.py
	$(PY) benchmarks/workers.py

clean:
	rm -rf $(VENV) demo_data bench_data
