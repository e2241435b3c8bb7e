#!/usr/bin/env bash
# Installs the Debian packages climate-jobs needs to build and test, if missing:
#   postgresql     the server binaries the tests and the demo start themselves
#   libnetcdf-dev  the NetCDF C library the climate reader links against
#   pkg-config     so netcdf-sys finds it
#   python3-venv   for the deploy-check tools below
#   prometheus, prometheus-pushgateway
#                  the servers the monitoring tests start themselves (and
#                  promtool, which checks and unit-tests the alert rules)
#   chromium       headless, renders `jobctl report`'s page in a test
#                  (fonts-dejavu-core: text in its screenshots)
# and the deploy-check tools of tools/deploy/requirements.txt
# (kubernetes-validate, hadolint, jsonschema) into .tools/venv from PyPI,
# re-installed when that file changes. The tests run them from there and
# need no network.
# Runs apt-get as root, or through sudo.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
{ [ -e /usr/include/netcdf.h ] || pkg-config --exists netcdf 2>/dev/null; } || need+=(libnetcdf-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v runuser >/dev/null || need+=(util-linux)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
{ command -v prometheus && command -v promtool; } >/dev/null || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v chromium >/dev/null || need+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cd "$(dirname "$0")/.."
venv=.tools/venv
req=tools/deploy/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing deploy-check tools into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
