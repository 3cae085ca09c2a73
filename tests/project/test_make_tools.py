"""make test's tools: a tool that cannot be installed skips its tests and says why in one line;
under CI (.ci/run sets AUTOGRADER_REQUIRE_TOOLS=1) that line fails make instead.

Here the tool is JupyterHub's proxy, on a PATH with neither it nor npm: whoever runs this (root
or not), make cannot install it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")


def ci_environment() -> dict[str, str]:
    """What .ci/run exports before it runs make test."""
    found = {}
    for line in (REPO / ".ci" / "run").read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            found[name.strip()] = value.strip()
    return found


def make_proxy(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "sh", "id", "env"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    if ci:
        env.update(ci_environment())
    return subprocess.run([MAKE, "-s", "--no-print-directory", "proxy"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_tool_make_cannot_install_skips_its_tests_and_says_why(tmp_path):
    done = make_proxy(tmp_path, ci=False)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make: ") and \
        lines[0].endswith("the Hub test will skip"), lines
    assert "configurable-http-proxy" in lines[0]


def test_under_ci_a_tool_make_cannot_install_fails_make_in_one_line(tmp_path):
    done = make_proxy(tmp_path, ci=True)
    assert done.returncode != 0
    said = [line for line in done.stderr.strip().splitlines() if not line.startswith("make: ***")]
    assert len(said) == 1, done.stderr
    assert "configurable-http-proxy" in said[0] and "the Hub test cannot run" in said[0]
    assert "AUTOGRADER_REQUIRE_TOOLS=1 (.ci/run)" in said[0]

