#!/usr/bin/env bash
# Builds CAF with ThreadSanitizer for the actor suite's data-race run (docs/reliability.md, "Data
# races"): the source of the installed libcaf-dev, from Debian's source package (apt-get source,
# the orig tarball of the same version), compiled with -fsanitize=thread into build-tsan/caf/lib.
# The installed headers replace the tarball's, so the instrumented libraries match what certfleet
# compiles against (the same soname: LD_LIBRARY_PATH picks them up, nothing is relinked). Prints
# the library directory last. Once built, it is reused.
# Usage: scripts/tsan-caf.sh   (CERTFLEET_DEB_SRC overrides the deb-src line)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$PWD/${CERTFLEET_TSAN_BUILD_DIR:-build-tsan}/caf
version=$(dpkg-query -W -f='${source:Version}' libcaf-dev)  # the source's, without a binNMU suffix
upstream=${version%%-*}
lib_dir=$dest/build/lib
if [[ -f $lib_dir/libcaf_io.so.$upstream && -f $lib_dir/libcaf_core.so.$upstream ]]; then
  echo "$lib_dir"
  exit 0
fi
mkdir -p "$dest/apt/lists/partial" "$dest/src"
echo "${CERTFLEET_DEB_SRC:-deb-src http://deb.debian.org/debian bookworm main}" >"$dest/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$dest/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$dest/apt/lists")
{
  apt-get "${apt_opts[@]}" update
  # Only the upstream tarball is needed; a missing Debian packaging tarball is not fatal.
  (cd "$dest/src" && apt-get "${apt_opts[@]}" source --download-only "actor-framework=$version") ||
    true
} >&2
tarball=$dest/src/actor-framework_$upstream.orig.tar.gz
if [[ ! -f $tarball ]]; then
  echo "tsan-caf.sh: could not download the source of actor-framework $version" >&2
  exit 1
fi
rm -rf "$dest/src/actor-framework-$upstream"
tar -xzf "$tarball" -C "$dest/src"
src=$dest/src/actor-framework-$upstream
# The installed headers are what certfleet compiles against (Debian's patches included).
for lib in libcaf_core libcaf_io; do
  (cd "$src/$lib" && find caf -type f -name '*.hpp') | while read -r header; do
    if [[ -f /usr/include/$header ]]; then cp "/usr/include/$header" "$src/$lib/$header"; fi
  done
done
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
{
  cmake -S "$src" -B "$dest/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread -DCAF_NO_EXAMPLES=yes -DCAF_NO_UNIT_TESTS=yes \
    -DCAF_NO_OPENCL=yes -DCAF_NO_OPENSSL=yes -DCAF_NO_PYTHON=yes -DCAF_NO_TOOLS=yes \
    -DCAF_NO_BENCHMARKS=yes
  cmake --build "$dest/build" -j "${CERTFLEET_JOBS:-$(nproc)}" --target libcaf_core_shared \
    libcaf_io_shared
} >&2
echo "$lib_dir"
