#!/usr/bin/env bash
# Installs the Debian packages climate-jobs needs to build and test, if missing:
#   postgresql     the server binaries the tests and the demo start themselves
#   libnetcdf-dev  the NetCDF C library the climate reader links against
#   pkg-config     so netcdf-sys finds it
# Runs apt-get as root, or through sudo.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
{ [ -e /usr/include/netcdf.h ] || pkg-config --exists netcdf 2>/dev/null; } || need+=(libnetcdf-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v runuser >/dev/null || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
