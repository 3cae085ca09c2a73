#!/usr/bin/env bash
# What `make test` installs for the tests that need a tool of the system (Makefile: browser,
# uidmap, postgres, proxy):
#
#   scripts/install-tool.sh TESTS CHECK apt|npm PACKAGE...
#
# Nothing to do where CHECK (a shell line) succeeds. Else, as root, it installs PACKAGE... with
# apt-get (waiting for apt's lock while another apt or dpkg holds it, up to 10 minutes) or npm.
# Where it cannot (not root, no apt-get or npm, the install failed), it says so in one line and
# TESTS skip; under AUTOGRADER_REQUIRE_TOOLS=1 (.ci/run) that line is an error: CI must not
# pass by skipping what it was meant to test.
set -uo pipefail
tests=$1 check=$2 installer=$3
shift 3

missing() {
    if [ "${AUTOGRADER_REQUIRE_TOOLS:-}" = 1 ]; then
        echo "make: $1: $tests cannot run, and AUTOGRADER_REQUIRE_TOOLS=1 (.ci/run) requires them" >&2
        exit 1
    fi
    echo "make: $1: $tests will skip"
    exit 0
}

sh -c "$check" >/dev/null 2>&1 && exit 0
[ "$(id -u)" = 0 ] || missing "$* is not installed, and only root installs it"
command -v "${installer/apt/apt-get}" >/dev/null || missing "$* is not installed, and there is no ${installer/apt/apt-get} here to install it"
echo "installing $* ($installer) for $tests"
if [ "$installer" = npm ]; then
    npm install -g --silent "$@" >/dev/null || missing "npm install -g $* failed"
else
    # apt-get waits up to DPkg::Lock::Timeout for dpkg's lock; the lists' lock, held by another
    # `apt-get update`, is waited for here, 10 s at a time.
    apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
    for _ in $(seq 60); do
        said=$("${apt[@]}" update 2>&1) && break
        case $said in *"Could not get lock"*|*"Unable to lock"*) sleep 10 ;; *) break ;; esac
    done
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "$@" >/dev/null \
        || missing "apt-get install $* failed"
fi
sh -c "$check" >/dev/null 2>&1 || missing "$* was installed, but \`$check\` still fails"
