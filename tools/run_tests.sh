#!/usr/bin/env bash
# The README's test command: set up (or reuse) .venv, then run the test suite.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k compat -x`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
venv="${MMFROZEN_VENV:-$root/.venv}"
cd "$root"
# pytest exits 5 when it collected no test: that is a failure here too.
exec "$venv/bin/python" -m pytest tests "$@"
