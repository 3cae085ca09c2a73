# `make demo` and `make test` each set up .venv when it is missing (or stale), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autograder demo demo-course

test: $(STAMP)
	$(PY) -m pytest -q -n 2

# The inner loop: in-process and unit tests, under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not sandbox and not slow and not cuda"

lint: $(STAMP)
	$(VENV)/bin/ruff check --extend-exclude "*.ipynb" autograder tests assignments benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_grade.py --students $(or $(STUDENTS),24)

clean:
	rm -rf $(VENV) demo-course .pytest_cache
