#!/usr/bin/env bash
# Fails when the committed src/gen differs from what the protos generate.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/generate.sh "$tmp/gen"
diff -r "$tmp/gen" src/gen || {
  echo "clients/typescript/src/gen is stale: run npm run generate and commit" >&2
  exit 1
}
echo "clients/typescript/src/gen is up to date"
