#!/usr/bin/env bash
# Run the ztmon daemon against the local Docker host on a fresh Debian machine. Installs a venv with
# ztmon if missing; uses dockerd if one answers (without Docker, ztmon still runs on host-only sources
# and reports ztmon_source_up{source="docker"} 0). Arguments go to `ztmon run`, e.g. --config FILE.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv ""
docker_up || say "no Docker engine answers: running on host-only sources"
exec "$VENV/bin/ztmon" run "$@"
