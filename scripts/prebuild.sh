#!/usr/bin/env bash
# Builds the shipped prebuild: prebuildify (Node-API, stripped, libc-tagged)
# into prebuilds/<platform>-<arch>/. Owns only prebuilds/; never touches the
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
# binding.gyp compiles native/*.cc and native/loadgen/*.cc; fuzz targets are not part of the addon.
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

# Replace the shipped prebuilds only once the new one exists.
platform_arch="$(node -p 'process.platform + "-" + process.arch')"
mkdir -p "$root/prebuilds/$platform_arch"
rm -f "$root/prebuilds/$platform_arch"/*.node
cp "$work/out/prebuilds/$platform_arch"/*.node "$root/prebuilds/$platform_arch/"
ls -l "$root/prebuilds/$platform_arch"
sha256sum "$root/prebuilds/$platform_arch"/*.node
