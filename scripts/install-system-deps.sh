#!/usr/bin/env bash
# Install the Debian packages the test suite needs, if they are missing:
#   influxdb        the InfluxDB 1.x server the sink tests start on loopback
#   systemd         systemd-analyze, to verify the unit file offline
#   poppler-utils   pdftoppm, to render report PDFs in tests
set -euo pipefail
need=()
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
