#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image from the uploaded zip (which holds
# this repository: autograder/, solutions/, assignments/, pyproject.toml, constraints.txt).
set -eu
apt-get update -q && apt-get install -y -q python3 python3-pip python3-venv
cd /autograder/source
# The CPU build of torch: Gradescope's graders have no GPU.
python3 -m pip install -q --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt -e .
