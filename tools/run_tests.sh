#!/usr/bin/env bash
# The README's test command: set up (or reuse) .venv, then run the fast test suite (at most 5
# minutes on 2 cores). Extra arguments go to pytest: `bash tools/run_tests.sh --full` runs the
# full suite (what CI runs), `bash tools/run_tests.sh -k compat -x` a part.
# The tests run on every core, one pytest-xdist worker each (`-n auto --dist loadgroup`;
# tests/conftest.py keeps the tests that share a costly fixture in one worker and gives each
# worker its share of torch's threads); `-n 0` runs them in this one process.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
venv="${MMFROZEN_VENV:-$root/.venv}"
cd "$root"
# pytest exits 5 when it collected no test: that is a failure here too.
exec "$venv/bin/python" -m pytest -n auto --dist loadgroup "$@"
