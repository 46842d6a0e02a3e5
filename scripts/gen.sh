#!/usr/bin/env bash
# Generates the Python stubs from proto/ into the folder given (default: the
# committed clients/python). Uses grpcio-tools + mypy-protobuf so that building
# never needs buf; the versions are pinned together in pyproject.toml.
set -euo pipefail
out=${1:-clients/python}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python}
# The mypy-protobuf plugins live beside the interpreter (in the venv).
export PATH="$(dirname "$(command -v "$py")"):$PATH"
mkdir -p "$out/mailpool/v1"
rm -f "$out"/mailpool/v1/*_pb2*.py "$out"/mailpool/v1/*_pb2*.pyi
"$py" -m grpc_tools.protoc -I proto --python_out="$out" --mypy_out=quiet:"$out" \
  proto/mailpool/v1/*.proto
# Service stubs only for the files that declare a service (no empty modules).
"$py" -m grpc_tools.protoc -I proto --grpc_python_out="$out" --mypy_grpc_out=quiet:"$out" \
  proto/mailpool/v1/*_service.proto
# The generated tree is a regular package so that type checkers and
# setuptools see it; the markers are written here so a fresh generation is
# complete on its own.
touch "$out/mailpool/__init__.py" "$out/mailpool/v1/__init__.py" "$out/mailpool/py.typed"
# The client library's Reason enum comes from ErrorReason's names and comments.
desc=$(mktemp)
trap 'rm -f "$desc"' EXIT
"$py" -m grpc_tools.protoc -I proto --include_source_info --descriptor_set_out="$desc" \
  proto/mailpool/v1/error.proto
mkdir -p "$out/mailpool_client"
"$py" scripts/gen_reasons.py "$desc" >"$out/mailpool_client/reasons.py"
