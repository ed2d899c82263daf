#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what is missing (Debian packages, a venv with
# ztmon and its dev tools), starts dockerd if none answers, then runs ruff, mypy, import-linter and pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k docker -x
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_debian_packages docker.io busybox-static
ensure_venv "[dev]"
ensure_dockerd

say "ruff"
"$VENV/bin/ruff" check ztmon tests bench
say "mypy --strict"
"$VENV/bin/mypy"
say "import-linter"
"$VENV/bin/lint-imports"
say "pytest"
"$VENV/bin/pytest" "$@"
