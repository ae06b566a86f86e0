#!/usr/bin/env bash
# The S3 emulator for the logs plugin's tests, demo and benchmark:
# @20minutes/s3rver 4.0.4 (it verifies SigV4 signatures; s3rver 3.x does not;
# 5.x needs Node 24, Debian 12 has 20),
# installed once into tests/.cache/s3rver. Idempotent.
set -eu
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="$SRC/tests/.cache/s3rver"
VERSION=4.0.4
if [ -x "$DIR/node_modules/.bin/s3rver" ] &&
    grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/@20minutes/s3rver/package.json" 2>/dev/null; then
    echo "s3rver $VERSION present"
    exit 0
fi
# Under CI a missing prerequisite fails the run; by hand the S3 tests skip,
# saying so, and everything else still runs.
missing() {
    echo "$1" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 0
}
if ! command -v npm >/dev/null; then
    missing "npm not found: s3rver not installed, the logs S3 tests will be skipped"
fi
mkdir -p "$DIR"
if ! npm install --silent --no-audit --no-fund --prefix "$DIR" "@20minutes/s3rver@$VERSION"; then
    missing "npm install of @20minutes/s3rver@$VERSION failed: the logs S3 tests will be skipped"
fi
echo "s3rver $VERSION installed in $DIR"
