#!/usr/bin/env bash
# Creates (or refreshes) the project virtualenv .venv from requirements.lock.
#
# Why a script and not "pip install": the TFX 1.16 stack only resolves cleanly from the
# committed lock (plain pip backtracks for many minutes), it needs Python 3.10 exactly, and
# TFX itself later runs `python -m pip` inside the venv to install user modules.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
lock="$root/requirements.lock"
stamp="$venv/.lock.sha256"
export UV_PYTHON_DOWNLOADS=never   # never let uv fetch an interpreter behind the user's back

source "$(dirname "${BASH_SOURCE[0]}")/find_python.sh"

# The lock, pyproject.toml (its console scripts are generated at install) and this script's own
# steps decide freshness.
want_sha="$(cat "$lock" "$root/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_sha" ]; then
  exit 0   # up to date
fi

if ! python310="$(find_python310)"; then
  echo "error: Python 3.10.12 or newer 3.10 is required (TFX 1.16 supports only 3.10) and none was found on PATH" >&2
  echo "       or under pyenv. Install it (e.g. 'pyenv install 3.10') or set PYTHON=/path/to/python3.10." >&2
  exit 1
fi
echo "==> using $python310 ($("$python310" --version 2>&1))"

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "$python310" -m venv "$venv"
fi
if [ ! -x "$venv/bin/uv" ]; then
  echo "==> installing uv into the venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
fi
echo "==> installing the locked dependencies (first time: a few minutes, about 3 GB)"
# --compile-bytecode: the .pyc files of every installed package are written now. Without them a
# Python started with PYTHONDONTWRITEBYTECODE=1 (set on these machines) compiles ~9,000 modules
# from source on every start: importing TFX, TFMA and Beam took 29.6 s instead of a few seconds, in
# every pipeline run, CLI call, canary process and test subprocess.
"$venv/bin/uv" pip sync --compile-bytecode --python "$venv/bin/python" "$lock"
# sync removes what the lock does not list; uv itself and the project (editable) come back after.
"$venv/bin/uv" pip install --python "$venv/bin/python" --quiet uv
"$venv/bin/uv" pip install --python "$venv/bin/python" --no-deps -e "$root"
echo "$want_sha" > "$stamp"
echo "==> environment ready: $venv"
