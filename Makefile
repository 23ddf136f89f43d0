# webmill: the two commands are `make demo` and `make test`; each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup chromium demo lint test test-fast bench clean

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# the CPU build of torch lies on these machines' disk; an unpinned torch pulls GBs of CUDA wheels
	@$(PIP) install -q --disable-pip-version-check torch==2.13.0 2>/dev/null || echo "torch 2.13.0 not available locally; pip will pick a torch"
	$(PIP) install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# the report test renders in headless Chromium (Debian's package); installed where missing and apt can
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; } ; } || \
	  echo "chromium not installed: the report rendering test will be skipped"

demo: setup
	$(VENV)/bin/webmill --root ./demo-corpus demo

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup chromium lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(PIP) install -q --disable-pip-version-check -e '.[bench]'
	$(PY) bench/shard_write.py
	$(PY) bench/crawl.py
	$(PY) bench/clean.py
	$(PY) bench/langid.py
	$(PY) bench/dedup.py
	$(PY) bench/train.py
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) build *.egg-info
