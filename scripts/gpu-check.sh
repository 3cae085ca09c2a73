#!/usr/bin/env bash
# The CUDA lane on a real GPU, in one run of under 5 minutes (issue 17). Usage, from the tree:
#
#   scripts/gpu-check.sh [OUTDIR]      # OUTDIR (default $OUT, else /tmp/gpu-check) gets the logs
#
# Made for a lent GPU machine: torch there, nothing to download, no nbgrader. It installs this
# tree without its dependencies (typer and rich are the CLI's; pytest and hypothesis the tests'),
# then runs the CUDA tests, then `autograder check --device cuda` on the lesson's source notebook
# (which holds the solutions: 10 / 10 expected) and on a copy whose lin_grad makes CPU tensors
# (its device points lost, lin_grad.wrong_device), and prints the figures. Without a GPU it says
# so, runs the same steps on what a CPU has (the CUDA tests skip, `--device all`), and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
py=${PYTHON:-python3}
failed=0
step() { echo; echo "== $*"; }

step "machine"
"$py" - <<'EOF' | tee "$out/machine.txt"
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda {torch.version.cuda}")
if torch.cuda.is_available():
    print(f"GPU: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)")
else:
    print("GPU: none (torch.cuda.is_available() is False): the CUDA parts are skipped")
EOF
if "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    gpu=1; device=cuda
else
    gpu=0; device=all
fi

step "install the tree (no dependencies, no network)"
site=$(mktemp -d)
if "$py" -m pip install -q --no-deps --no-build-isolation --no-index --target "$site" . \
        >"$out/install.log" 2>&1; then
    export PYTHONPATH="$site"
    echo "installed into $site"
else
    export PYTHONPATH="$PWD"   # a machine without setuptools: the tree itself
    echo "pip could not build the tree here (see install.log): using it in place"
fi
for name in typer rich pytest hypothesis safetensors pyseccomp; do
    "$py" -c "import $name" 2>/dev/null || echo "missing here: $name"
done

step "pytest -m cuda"
# From a copy of the tests outside the tree, so that the installed package is the one tested.
cp -r tests assignments solutions "$site/" && cp pyproject.toml "$site/"
(cd "$site" && timeout 150 "$py" -m pytest -q -p no:cacheprovider -m cuda \
    --rootdir "$site" tests/judge/test_devices.py) 2>&1 | tee "$out/pytest-cuda.log"
code=${PIPESTATUS[0]}
# 5: no test ran (all deselected); 0: passed. Without a GPU the cuda tests skip: both are fine.
if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then failed=1; fi

step "notebooks: the solution, and a lin_grad that makes CPU tensors"
"$py" - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
nb = json.loads(Path("assignments/backward/backward.ipynb").read_text())
cpu_only = ("def lin_grad(inp, out, w, b):\n"
            "    inp.g = out.g @ w.t()\n"
            "    w.g = torch.zeros(w.shape, dtype=w.dtype)   # on the CPU, wherever w is\n"
            "    w.g += inp.t() @ out.g\n"
            "    b.g = out.g.sum(0)\n")
for cell in nb["cells"]:
    source = "".join(cell["source"])
    if cell["cell_type"] == "code" and source.lstrip().startswith("def lin_grad"):
        cell["source"] = cpu_only
        break
else:
    sys.exit("the source notebook has no lin_grad cell")
(out / "cpu-lin-grad.ipynb").write_text(json.dumps(nb))
EOF

run_check() {  # NAME NOTEBOOK: the report as JSON in OUTDIR/NAME.json, its time in seconds
    local start end
    start=$(date +%s.%N)
    timeout 120 "$py" -m autograder check --json --device "$device" "$2" >"$out/$1.json" \
        2>"$out/$1.err"
    local code=$?
    end=$(date +%s.%N)
    echo "$1: exit $code in $(echo "$end - $start" | bc 2>/dev/null || echo "?") s"
    cat "$out/$1.err"
}
run_check solution assignments/backward/backward.ipynb
run_check cpu-lin-grad "$out/cpu-lin-grad.ipynb"

step "figures"
"$py" - "$out" "$gpu" <<'EOF' || failed=1
import json, sys
from pathlib import Path
out, gpu = Path(sys.argv[1]), sys.argv[2] == "1"
problems = []
try:
    solution = json.loads((out / "solution.json").read_text())
    wrong = json.loads((out / "cpu-lin-grad.json").read_text())
except (OSError, ValueError) as exc:
    sys.exit(f"a check gave no report: {exc}")
print(f"solution: {solution['score']:g} / {solution['max_score']:g}; devices {solution['devices']}")
lost = [c for c in wrong["checks"] if not c["passed"]]
print(f"CPU-only lin_grad: {wrong['score']:g} / {wrong['max_score']:g}; failing: "
      + ", ".join(f"{c['id']} {c['mistakes']} (-{c['max_points']:g})" for c in lost))
if solution["score"] != solution["max_score"]:
    problems.append("the solution lost points")
if [c["id"] for c in lost] != ["lin_grad/gpu-ready"] or \
        lost[0]["mistakes"] != ["lin_grad.wrong_device"]:
    problems.append("the CPU-only lin_grad should fail lin_grad/gpu-ready alone, with "
                    "lin_grad.wrong_device")
if gpu and solution["devices"].get("cuda") != "passed":
    problems.append(f"CUDA lane: {solution['devices'].get('cuda')}")
if not gpu and solution["devices"].get("cuda") != "not available here":
    problems.append(f"without a GPU the CUDA lane says {solution['devices'].get('cuda')}")
for p in problems:
    print(f"PROBLEM: {p}")
sys.exit(1 if problems else 0)
EOF

step "result"
if [ "$failed" -ne 0 ]; then echo "gpu-check: FAILED (logs in $out)"; exit 1; fi
if [ "$gpu" -eq 1 ]; then echo "gpu-check: passed on the GPU (logs in $out)"
else echo "gpu-check: no GPU here; the CPU parts passed, the CUDA parts skipped (logs in $out)"; fi
