# Shared set-up steps for scripts/test.sh and scripts/run.sh. Idempotent: fast when all is in place.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ZTMON_VENV:-$ROOT/.venv}"
STATE="$ROOT/.tools"
mkdir -p "$STATE"

say() { printf '== %s\n' "$*" >&2; }

ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      say "missing Debian packages: ${missing[*]} (run as root or install them)"; return 1
    fi
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$STATE/apt.log" 2>&1 \
      || { tail -20 "$STATE/apt.log"; return 1; }
  fi
}

ensure_venv() {
  local extras="${1:-}"
  local stamp="$VENV/.ztmon-installed$extras"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing ztmon$extras into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT$extras"
    touch "$stamp"
  fi
}

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_dockerd() {
  if docker_up; then return 0; fi
  if ! command -v dockerd >/dev/null; then say "no dockerd on this machine"; return 1; fi
  say "starting dockerd (log: $STATE/dockerd.log)"
  nohup dockerd --storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none \
    >"$STATE/dockerd.log" 2>&1 &
  # Usually < 1 s; after an unclean stop dockerd first removes every stale network sandbox (~0.1 s each).
  for _ in $(seq 1 1200); do docker_up && return 0; sleep 0.1; done
  say "dockerd did not come up:"; tail -20 "$STATE/dockerd.log"; return 1
}
