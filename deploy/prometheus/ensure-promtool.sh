#!/usr/bin/env bash
# Make `promtool` available for deploy/test/prometheus.test.ts (promtool check config / check rules /
# test rules). Called by .ci/run before the tests.
#
# If promtool is already on PATH: nothing to do. Otherwise install Debian's `prometheus` package
# (it ships /usr/bin/promtool) with apt-get — CI runs as root on a Debian/Ubuntu image with apt.
# Not root: uses sudo if it can do so without a password, else explains and fails.
#
# Note: Debian builds Prometheus without Kubernetes service discovery, so that promtool cannot parse
# prometheus.k8s.yml (kubernetes_sd_configs); the test checks that file structurally instead.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  echo "promtool: $(promtool --version 2>&1 | head -1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-promtool: promtool is not installed and apt-get is not available." >&2
  echo "Install Prometheus' promtool (https://prometheus.io/download/) and put it on PATH." >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "ensure-promtool: promtool is missing and installing it needs root (apt-get install prometheus)." >&2
    exit 1
  fi
fi

echo "ensure-promtool: installing the Debian package 'prometheus' for promtool"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# --no-install-recommends: promtool only; no exporters or web assets.
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# In a container without systemd the package's postinst cannot start the server; where it can (a VM
# with systemd), it would start a Prometheus on :9090 that nothing here needs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null 2>&1 || { echo "ensure-promtool: package installed but promtool not on PATH" >&2; exit 1; }
echo "promtool: $(promtool --version 2>&1 | head -1)"
