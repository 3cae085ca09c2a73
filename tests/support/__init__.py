"""Helpers shared by the tests, `benchmarks/` and `scripts/`: ordinary users and a course for them
(`userenv`, `courseusers`), a PostgreSQL server (`postgres`), Chromium (`chromium`), the cheats
the attack suites try (`cheats`) and the command with the rules let through (`unchecked`).

`benchmarks/` and `scripts/` import from here, never from the tests themselves
(`tests/project/test_dev_imports.py`); nothing here imports a test module or conftest, except
`unchecked`, which the tests alone run."""

import os

#: `.ci/run` sets AUTOGRADER_REQUIRE_SANDBOX=1: there a test that needs a layer of the sandbox
#: this machine does not offer fails and says why, instead of skipping (a CI without user
#: namespaces would otherwise pass without ever testing the sandbox).
REQUIRE_SANDBOX = os.environ.get("AUTOGRADER_REQUIRE_SANDBOX") == "1"
