#!/usr/bin/env bash
# Generates the TypeScript code of ../../proto (mailpool.v1) and proto-vendor
# (google.rpc status and error details) into the folder given (default: the
# committed src/gen), with buf and protoc-gen-es from node_modules (npm ci first).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/gen}
bin=node_modules/.bin
[ -x "$bin/buf" ] && [ -x "$bin/protoc-gen-es" ] || { echo "run npm ci first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# buf writes each plugin's `out` below -o; generate aside, then replace the folder
# whole so that files of removed protos go too.
"$bin/buf" generate --template buf.gen.yaml -o "$tmp"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$tmp/src/gen" "$out"
