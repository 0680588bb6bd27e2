#!/usr/bin/env bash
# Build ISCE2 from its source release with CMake against the system's packages.
#
# One script, two callers: `make isce2` and envs/isce2/Dockerfile (also for Apptainer).
# The install goes outside the clone, keyed by version and source digest, so that every clone
# and CI on the same machine share it:
#     ${DINSAR_ISCE2_ROOT:-${XDG_CACHE_HOME:-~/.cache}/dinsar-toolkit/isce2}/<version>-<digest12>/
# A finished install holds install.json (written last); a second run finds it and does nothing.
#
# Settings (environment):
#   ISCE2_SOURCE       path or URL of the source archive. Default: ../shared/vendor/isce2-<v>.tar.gz
#                      beside the clone when it exists, else the upstream release archive.
#   ISCE2_PYTHON       interpreter to build against and run topsApp with (default /usr/bin/python3:
#                      it must have numpy and GDAL's bindings, and Python headers)
#   DINSAR_ISCE2_ROOT  where installs live (see above)
#   ISCE2_JOBS         parallel compile jobs (default: number of CPUs)
#   ISCE2_SKIP_PACKAGES=1  do not check Debian packages (modules, conda, other systems)
set -euo pipefail

VERSION=2.6.5
# sha256 of the release archive made with `git archive --prefix=isce2-2.6.5/ v2.6.5`
ARCHIVE_SHA256=f9325b2d5815ab8238a1210aad6f15cd4f0c18922f6161aef20b1e3c8a1d066c
# content digest (source_digest.py) of the tag: the same for GitHub's archive of it
CONTENT_SHA256=61051fabeff2503e44dbb22f1b8529ed79275cfd22ba74039c19c22edadc44ea
UPSTREAM_URL="https://github.com/isce-framework/isce2/archive/refs/tags/v${VERSION}.tar.gz"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${ISCE2_PYTHON:-/usr/bin/python3}"
root="${DINSAR_ISCE2_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/dinsar-toolkit/isce2}"
prefix="$root/${VERSION}-${CONTENT_SHA256:0:12}"
manifest="$prefix/install.json"
say() { echo "isce2: $*"; }
die() { echo "isce2: error: $*" >&2; exit 1; }

if [ "${1:-}" = "--prefix" ]; then  # where the install is (or would be); builds nothing
    echo "$prefix"
    exit 0
fi
if [ -f "$manifest" ]; then
    say "ISCE2 $VERSION is already built in $prefix (nothing to do; make clean-isce2 removes it)"
    exit 0
fi

# --- system packages ----------------------------------------------------------------------------
if [ "${ISCE2_SKIP_PACKAGES:-0}" != 1 ]; then
    bash "$here/../system-packages.sh" || die "the system packages are missing (see above)"
fi
for tool in cmake gfortran; do
    command -v "$tool" >/dev/null || die "$tool not found; install it (README: 'ISCE2 without root')"
done
"$python" -c "import numpy; from osgeo import gdal" 2>/dev/null \
    || die "$python cannot import numpy and osgeo.gdal; install python3-numpy python3-gdal, or set ISCE2_PYTHON"

# --- source -------------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/isce2-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [ -z "${ISCE2_SOURCE:-}" ]; then
    vendored="$repo/../shared/vendor/isce2-${VERSION}.tar.gz"
    if [ -f "$vendored" ]; then ISCE2_SOURCE="$vendored"; else ISCE2_SOURCE="$UPSTREAM_URL"; fi
fi
case "$ISCE2_SOURCE" in
    http://* | https://*)
        say "downloading $ISCE2_SOURCE"
        curl -fL --retry 3 -o "$work/source.tar.gz" "$ISCE2_SOURCE" \
            || die "could not download $ISCE2_SOURCE; set ISCE2_SOURCE to a local copy of the release archive"
        archive="$work/source.tar.gz" ;;
    *)
        [ -f "$ISCE2_SOURCE" ] || die "ISCE2_SOURCE=$ISCE2_SOURCE is not a file"
        archive="$ISCE2_SOURCE" ;;
esac
sha="$(sha256sum "$archive" | cut -d' ' -f1)"
if [ "$sha" != "$ARCHIVE_SHA256" ]; then
    content="$("$python" "$here/source_digest.py" "$archive")" || die "cannot read $ISCE2_SOURCE"
    [ "$content" = "$CONTENT_SHA256" ] || die "$ISCE2_SOURCE is not the ISCE2 $VERSION release:
  archive sha256 $sha (expected $ARCHIVE_SHA256),
  content digest $content (expected $CONTENT_SHA256);
  delete it and download https://github.com/isce-framework/isce2/releases/tag/v$VERSION again"
fi
say "source $ISCE2_SOURCE verified (ISCE2 $VERSION)"

# --- build and install --------------------------------------------------------------------------
mkdir -p "$root"
exec 9>"$root/.build.lock"
flock 9  # a second clone building at the same time waits, then finds the install
if [ -f "$manifest" ]; then
    say "ISCE2 $VERSION was built meanwhile in $prefix"
    exit 0
fi
rm -rf "$prefix"  # an interrupted earlier build (no install.json)
start=$(date +%s)
tar -xzf "$archive" -C "$work"
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
jobs="${ISCE2_JOBS:-$(nproc 2>/dev/null || echo 2)}"
say "building with $jobs job(s) against $python into $prefix (a few minutes)"
# CUDA off: topsApp does not need PyCuAmpcor, and a CUDA toolkit on the machine would build it
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DPython_EXECUTABLE="$python" -DPYTHON_MODULE_DIR=packages -DCMAKE_CUDA_COMPILER=NOTFOUND \
    >"$work/cmake.log" 2>&1 || { tail -n 40 "$work/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 \
    || { grep -m 20 -i "error" "$work/build.log" >&2 || tail -n 40 "$work/build.log" >&2; die "build failed"; }
cmake --install "$work/build" >"$work/install.log" 2>&1 \
    || { tail -n 40 "$work/install.log" >&2; die "install failed"; }

# ISCE starts its own scripts (imageMath.py) through `#!/usr/bin/env python3`: the workflow puts
# this folder first on PATH so that they find the interpreter ISCE was built against
mkdir -p "$prefix/bin"
ln -sf "$python" "$prefix/bin/python3"
isce_home="$prefix/packages/isce2"
topsapp="$isce_home/applications/topsApp.py"
[ -f "$topsapp" ] || die "the install has no $topsapp"
# the same check the workflow makes before it runs anything
version="$(PYTHONPATH="$prefix/packages" ISCE_HOME="$isce_home" "$python" -c \
    'import isce; print(isce.__version__)' 2>/dev/null | tail -n 1)"
[ "$version" = "$VERSION" ] || die "the installed ISCE2 reports version '$version', not $VERSION"
seconds=$(( $(date +%s) - start ))
gdal_version="$("$python" -c 'from osgeo import gdal; print(gdal.__version__)')"
cat >"$prefix/install.json.tmp" <<EOF
{
  "version": "$VERSION",
  "content_sha256": "$CONTENT_SHA256",
  "python": "$python",
  "isce_home": "$isce_home",
  "pythonpath": "$prefix/packages",
  "topsapp": "$topsapp",
  "gdal": "$gdal_version",
  "build_seconds": $seconds,
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
mv "$prefix/install.json.tmp" "$manifest"
say "built ISCE2 $VERSION in ${seconds} s: $(du -sh "$prefix" | cut -f1) in $prefix"
