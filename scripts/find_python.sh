# Sourced by setup_env.sh and base_image.sh: prints the path of a Python 3.10.12+ interpreter.
# Order: $PYTHON, python3.10/python3 on PATH, pyenv's newest 3.10, common install locations.
find_python310() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return 0; fi
  local candidate
  for candidate in python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not (3, 10, 12) <= sys.version_info[:3] < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version="$(pyenv latest 3.10 2>/dev/null || true)"
    candidate="$(pyenv root)/versions/$version/bin/python3.10"
    if [ -n "$version" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  fi
  for candidate in "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}
