#!/usr/bin/env bash
# The Debian/Ubuntu packages the project needs from the system, in one place: what ISCE2's
# build and topsApp use (CMake, Fortran, FFTW, GDAL with its Python bindings, HDF5, Cython)
# and libgdal-dev for the venv's GDAL bindings (burst2safe, MintPy).
# As root with apt-get: installs the missing ones. Otherwise: prints the one command to run.
#     bash envs/system-packages.sh [--check]     # --check: only say what is missing (exit 1)
set -euo pipefail
PACKAGES=(cmake make gfortran g++ libfftw3-dev libgdal-dev gdal-bin python3-gdal python3-dev
          python3-numpy python3-scipy python3-h5py libhdf5-dev cython3)

command -v dpkg-query >/dev/null || exit 0  # not Debian: the README says what to provide
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "${1:-}" != "--check" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "system packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { echo "error: apt-get could not install ${missing[*]}" >&2; exit 1; }
    exit 0
fi
echo "error: missing system packages; run: sudo apt-get install ${missing[*]}" >&2
echo "(without root: README, 'ISCE2 without root')" >&2
exit 1
