#!/usr/bin/env bash
# The README's main command: set up (or reuse) .venv, then run the mini reproduction.
# Arguments go to projects/mini_world/tools/mini_reproduction.py (--seeds N, --force, ...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bash "$root/tools/setup_env.sh"
venv="${MMFROZEN_VENV:-$root/.venv}"
cd "$root"
exec "$venv/bin/python" projects/mini_world/tools/mini_reproduction.py "$@"
