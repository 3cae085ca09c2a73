# `make demo` and `make test` each set up .venv when it is missing (or stale), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench bench-serve clean browser uidmap proxy hub postgres

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autograder demo demo-course

# --dist loadfile: each test file runs in one worker, so a module that sets up real users, a
# course or a JupyterHub once (tests/course/test_exchange.py, test_serve.py, test_hub.py) never has a
# second copy of them racing it in the other worker. (xdist's loadgroup does not group under
# pytest 9: its xdist_group marks are kept as documentation.)
test: $(STAMP) browser uidmap proxy postgres
	$(PY) -m pytest -q -n 2 --dist loadfile

# The tools some tests need, installed where missing, as root (scripts/install-tool.sh: apt-get,
# which waits for apt's lock, or npm); elsewhere those tests skip, and make says why in one line.
# Under AUTOGRADER_REQUIRE_TOOLS=1 (.ci/run) a tool that cannot be installed fails make test.
INSTALL := scripts/install-tool.sh

# tests/course/test_browser.py drives Debian's Chromium.
browser:
	@$(INSTALL) "the browser tests" "test -x /usr/bin/chromedriver" apt chromium chromium-driver

# tests/sandbox/test_subuid.py grants a user subordinate ids: Debian's uidmap (newuidmap, newgidmap).
uidmap:
	@$(INSTALL) "the subordinate-uid tests" "command -v newuidmap && command -v newgidmap" apt uidmap

# tests/course/test_postgres.py starts its own PostgreSQL server (tests/support/postgres.py): Debian's postgresql.
postgres:
	@$(INSTALL) "the PostgreSQL tests" "ls /usr/lib/postgresql/*/bin/initdb" apt postgresql

# JupyterHub's proxy (tests/course/test_hub.py, `make hub`): npm's configurable-http-proxy.
proxy:
	@$(INSTALL) "the Hub test" "command -v configurable-http-proxy" npm configurable-http-proxy

# The course on JupyterHub on this machine (root): an instructor and two students as Unix users,
# the lesson released into nbgrader's exchange; prints the address and the logins; Ctrl-C ends it.
hub: $(STAMP) proxy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/hub_demo.py

# The inner loop: in-process and unit tests, under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not sandbox and not slow and not cuda"

lint: $(STAMP)
	$(VENV)/bin/ruff check --extend-exclude "*.ipynb" autograder tests assignments benchmarks

# Every figure docs/performance.md quotes, in one run (about 15 minutes on 2 cores): stock against ours
# at 144 and 1,000 students handing in both lessons; root and ordinary user, SQLite and
# PostgreSQL, local workers and a Dask cluster of two (at 144); where the time goes.
SIZES ?= 144,1000
BENCH ?= --lessons backward,classifier --stock-sample 8 --postgres --dask --profile
bench: $(STAMP) postgres
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/bench_grade.py --sizes $(SIZES) $(BENCH)

# submit -> feedback with `autograder serve` running: a burst of 100 notebooks from 20 students
bench-serve: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/bench_serve.py

clean:
	rm -rf $(VENV) demo-course .pytest_cache
