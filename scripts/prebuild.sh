#!/usr/bin/env bash
# Builds the shipped prebuilds: prebuildify (Node-API, stripped, libc-tagged)
# makes the engine addon, prebuilds/<platform>-<arch>/edgepoll.<tags>.node;
# the same node-gyp run builds the load generator (its own addon, bench only),
# stripped and tagged alike into prebuilds/<platform>-<arch>/loadgen/, a
# subdirectory so node-gyp-build never mistakes it for the engine (in
# build/Release both sit side by side: node-gyp-build and prebuildify take the
# first *.node in sorted order, edgepoll.node before edgepoll_loadgen.node). Owns only prebuilds/; never touches the
# shared build/ directory (others build there at the same time): the compile
# runs in a copy of the sources at a fixed path, so the output is the same
# bytes for the same sources (the path is part of what the compiler embeds).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${EDGEPOLL_PREBUILD_DIR:-${TMPDIR:-/tmp}/edgepoll-prebuild}"

if [ "$(uname -s)" != Linux ]; then
  echo "prebuild: the native engine is Linux-only; nothing to build on $(uname -s)" >&2
  exit 0
fi

# One prebuild at a time per machine (the work directory is shared).
exec 9>"$work.lock"
flock 9

rm -rf "$work"
mkdir -p "$work/native"
cp "$root/binding.gyp" "$root/package.json" "$work/"
# binding.gyp compiles native/*.cc (engine) and native/loadgen/*.cc (load generator); fuzz targets are in neither.
cp "$root"/native/*.cc "$root"/native/*.h "$work/native/"
if [ -d "$root/native/loadgen" ]; then cp -r "$root/native/loadgen" "$work/native/loadgen"; fi
ln -s "$root/node_modules" "$work/node_modules"

# Headers: the running node's own (no download) when it ships them.
prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node_api.h" ]; then
  export npm_config_nodedir="$prefix"
fi
export JOBS="${JOBS:-2}"

cd "$work"
"$root/node_modules/.bin/prebuildify" --napi --strip --tag-libc --quiet --out "$work/out"

# prebuildify moved the engine out of build/Release; the load generator is
# left there: same tags as the engine's file, stripped the same way.
platform_arch="$(node -p 'process.platform + "-" + process.arch')"
engine_file="$(cd "$work/out/prebuilds/$platform_arch" && ls *.node)"
[ "$(printf '%s\n' "$engine_file" | wc -l)" = 1 ] || { echo "prebuild: expected one engine prebuild, got: $engine_file" >&2; exit 1; }
loadgen_file="edgepoll_loadgen.${engine_file#edgepoll.}"
mkdir -p "$work/out/prebuilds/$platform_arch/loadgen"
cp "build/Release/edgepoll_loadgen.node" "$work/out/prebuilds/$platform_arch/loadgen/$loadgen_file"
strip --strip-all "$work/out/prebuilds/$platform_arch/loadgen/$loadgen_file"

# Replace the shipped prebuilds only once the new ones exist.
mkdir -p "$root/prebuilds/$platform_arch/loadgen"
rm -f "$root/prebuilds/$platform_arch"/*.node "$root/prebuilds/$platform_arch"/loadgen/*.node
cp "$work/out/prebuilds/$platform_arch/$engine_file" "$root/prebuilds/$platform_arch/"
cp "$work/out/prebuilds/$platform_arch/loadgen/$loadgen_file" "$root/prebuilds/$platform_arch/loadgen/"
ls -l "$root/prebuilds/$platform_arch" "$root/prebuilds/$platform_arch/loadgen"
sha256sum "$root/prebuilds/$platform_arch"/*.node "$root/prebuilds/$platform_arch"/loadgen/*.node
