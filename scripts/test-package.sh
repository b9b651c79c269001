#!/usr/bin/env bash
# The package as users get it (issue 7): builds the prebuild and dist/, lints
# the tarball's metadata and types (publint, arethetypeswrong), then runs
# test/package.test.ts, which packs, installs into temp projects (prebuild
# without a compiler; --build-from-source) and runs the result. Needs the npm
# registry (the tarball's dependencies). About two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

step() { printf '\n== %s\n' "$*"; }

step "prebuild (prebuildify --napi --strip --tag-libc)"
bash scripts/prebuild.sh

step "dist/ (scripts/build-ts.js)"
node scripts/build-ts.js

step "publint --strict"
node_modules/.bin/publint --strict

step "attw --pack"
node_modules/.bin/attw --pack .

step "test/package.test.ts"
EDGEPOLL_PACKAGE_TESTS=1 node_modules/.bin/vitest run test/package.test.ts

step "package checks passed in $((SECONDS - start)) s"
