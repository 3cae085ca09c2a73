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
# course or a JupyterHub once (tests/test_exchange.py, test_serve.py, test_hub.py) never has a
# second copy of them racing it in the other worker. (xdist's loadgroup does not group under
# pytest 9: its xdist_group marks are kept as documentation.)
test: $(STAMP) browser uidmap proxy postgres
	$(PY) -m pytest -q -n 2 --dist loadfile

# tests/test_browser.py drives Debian's Chromium: installed where missing, as root with apt-get;
# elsewhere those tests skip and say why.
browser:
	@if [ ! -x /usr/bin/chromedriver ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (apt-get) for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null) || echo "make: chromium was not installed: the browser tests will skip"; \
	fi

# tests/test_subuid.py grants a user subordinate ids: Debian's uidmap (newuidmap, newgidmap),
# installed where missing, as root with apt-get; elsewhere those tests skip and say why.
uidmap:
	@if ! command -v newuidmap >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing uidmap (apt-get) for the subordinate-uid tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			uidmap >/dev/null) || echo "make: uidmap was not installed: the subordinate-uid tests will skip"; \
	fi

# tests/test_postgres.py starts its own PostgreSQL server (tests/postgres.py): Debian's postgresql,
# installed where missing, as root with apt-get; elsewhere those tests skip and say why.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing postgresql (apt-get) for the PostgreSQL gradebook tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			postgresql >/dev/null) || echo "make: postgresql was not installed: the PostgreSQL tests will skip (.ci/run: fail)"; \
	fi

# JupyterHub's proxy (tests/test_hub.py, `make hub`): npm's configurable-http-proxy, installed
# where missing, as root with npm; elsewhere the Hub test skips and says why.
proxy:
	@if ! command -v configurable-http-proxy >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v npm >/dev/null; then \
			echo "installing configurable-http-proxy (npm install -g) for JupyterHub"; \
			npm install -g --silent configurable-http-proxy >/dev/null \
				|| echo "make: configurable-http-proxy was not installed: the Hub test will skip"; \
		else \
			echo "make: no configurable-http-proxy, and npm as root to install it: the Hub test will skip"; \
		fi; \
	fi

# The course on JupyterHub on this machine (root): an instructor and two students as Unix users,
# the lesson released into nbgrader's exchange; prints the address and the logins; Ctrl-C ends it.
hub: $(STAMP) proxy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/hub_demo.py

# The inner loop: in-process and unit tests, under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not sandbox and not slow and not cuda"

lint: $(STAMP)
	$(VENV)/bin/ruff check --extend-exclude "*.ipynb" autograder tests assignments benchmarks

# Every figure the README quotes, in one run (about 15 minutes on 2 cores): stock against ours
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
