#!/usr/bin/env bash
# buf breaking (FILE rules) of the working tree against a git ref, skipped when the
# ref has no protos yet (the first landing).
set -euo pipefail
against=${1:?usage: buf-breaking.sh BUF_INPUT}
buf=(npx --yes @bufbuild/buf@1.75.0)
ref=${against#.git#}
ref=${ref#branch=}
ref=${ref#ref=}
ref=${ref%%,*}
if ! git rev-parse --verify --quiet "$ref" >/dev/null ||
   [ -z "$(git ls-tree -r --name-only "$ref" -- proto 2>/dev/null)" ]; then
  echo "buf breaking: no protos at $ref yet; nothing to compare"
  exit 0
fi
# The protos first landed without per-language file options (go_package,
# java_package, ...). FILE rules report setting them as a change ("" to a value),
# although no client could be generated for those languages before (protoc-gen-go
# refuses a file without go_package). So against a ref that predates the options,
# and only then, the rules about those options are ignored; every other rule
# still runs, and once the baseline has the options any change to them fails.
if ! git grep -q '^option go_package' "$ref" -- proto; then
  options=(CSHARP_NAMESPACE GO_PACKAGE JAVA_MULTIPLE_FILES JAVA_OUTER_CLASSNAME
           JAVA_PACKAGE OBJC_CLASS_PREFIX PHP_NAMESPACE RUBY_PACKAGE)
  ignore=""
  for o in "${options[@]}"; do ignore+="${ignore:+,}\"FILE_SAME_$o\":[\"proto/mailpool\"]"; done
  echo "buf breaking: $ref predates the file options; ignoring FILE_SAME_{$(IFS=,; echo "${options[*]}")}"
  # Same module and rules as buf.yaml, plus the exemption.
  config='{"version":"v2","modules":[{"path":"proto"}],"breaking":{"use":["FILE"],"ignore_only":{'"$ignore"'}}}'
  exec "${buf[@]}" breaking --against "$against" --config "$config"
fi
exec "${buf[@]}" breaking --against "$against"
