# Set-up and checks for hiermodels. `make demo` and `make test` work on a fresh clone:
# the first run creates $(VENV) and installs the package with its test tools.

VENV ?= .venv
PYTHON ?= $(shell command -v python3.12 || command -v python3.13 || command -v python3)
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help install browser demo test test-all lint format docs bench clean distclean

help:
	@echo "make demo      fit the sleepstudy example and print the report"
	@echo "make test      fast tests (not marked slow), 2 workers"
	@echo "make test-all  every test, including notebooks and long runs"
	@echo "make lint      ruff check, ruff format --check and mypy"
	@echo "make docs      build the HTML docs into docs/_build/html"
	@echo "make bench     run every benchmarks/*.py"
	@echo "make clean     remove build artefacts and caches (distclean: the venv too)"

# The venv is (re)built whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@command -v "$(PYTHON)" >/dev/null 2>&1 || { \
		echo "error: no Python interpreter found (PYTHON='$(PYTHON)')." >&2; \
		echo "       Install Python 3.12 or run make PYTHON=/path/to/python3.12" >&2; \
		exit 1; \
	}
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || { \
		echo "error: hiermodels needs Python >= 3.12, but $(PYTHON) is $$($(PYTHON) -V 2>&1)." >&2; \
		echo "       Install Python 3.12 or run make PYTHON=/path/to/python3.12" >&2; \
		exit 1; \
	}
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

install: $(VENV)/.installed

$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	@touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/hiermodels demo sleepstudy

# The explorer's tests (tests/explore) drive a headless Chromium, Debian's chromium package.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		elif command -v sudo >/dev/null 2>&1; then sudo apt-get update && sudo apt-get install -y chromium; \
		else echo "error: the explorer tests need Chromium: run apt-get install chromium as root" >&2; exit 1; fi; \
	}

# pytest exits 5 when no test ran; make treats that as a failure, as it should.
test: $(VENV)/.installed browser
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadgroup -q $(PYTEST_ARGS)

# The slow tier builds the docs (tests/test_docs_offline.py), so it needs the docs extra.
test-all: $(VENV)/.installed-docs browser
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The API pages are generated anew each build: a page left from a renamed module fails it.
# The site must work offline: a page that loads a script or stylesheet from elsewhere fails it.
docs: $(VENV)/.installed-docs
	rm -rf docs/api/generated
	$(BIN)/sphinx-build -W -b html docs docs/_build/html
	$(BIN)/python docs/check_offline.py docs/_build/html

bench: $(VENV)/.installed-bench
	@set -e; found=0; \
	for script in benchmarks/[!_]*.py; do \
		[ -e "$$script" ] || continue; \
		found=1; \
		echo "== $$script"; \
		$(BIN)/python "$$script"; \
	done; \
	if [ $$found = 0 ]; then echo "error: no benchmarks/*.py to run" >&2; exit 1; fi

clean:
	rm -rf build dist *.egg-info docs/_build hiermodels-report .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Run every case study top to bottom and store its outputs in the notebook: the docs render
# the notebooks as stored. A failed assertion stops the run and leaves that notebook as it was.
.PHONY: notebooks
notebooks: $(VENV)/.installed
	@set -e; for nb in case_studies/*.ipynb; do \
		echo "== $$nb"; start=$$(date +%s); \
		$(BIN)/python -c 'import sys, nbclient, nbformat; path = sys.argv[1]; nb = nbformat.read(path, as_version=4); nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=False, resources={"metadata": {"path": "case_studies"}}).execute(); nbformat.write(nb, path)' "$$nb"; \
		echo "   done in $$(( $$(date +%s) - start )) s"; \
	done
