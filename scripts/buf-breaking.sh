#!/usr/bin/env bash
# buf breaking (FILE rules) of the working tree against a git ref, skipped when the
# ref has no protos yet (the first landing).
set -euo pipefail
against=${1:?usage: buf-breaking.sh BUF_INPUT}
ref=${against#.git#}
ref=${ref#branch=}
ref=${ref#ref=}
ref=${ref%%,*}
if ! git rev-parse --verify --quiet "$ref" >/dev/null ||
   [ -z "$(git ls-tree -r --name-only "$ref" -- proto 2>/dev/null)" ]; then
  echo "buf breaking: no protos at $ref yet; nothing to compare"
  exit 0
fi
npx --yes @bufbuild/buf@1.75.0 breaking --against "$against"
