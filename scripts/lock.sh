#!/usr/bin/env bash
# Rewrites constraints.txt from a fresh install of pyproject.toml's ranges, so indirect
# dependencies are pinned for CI. Run after changing a dependency, then commit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -e "$root/clients/python" -e "$root[dev]"
{
  echo "# Every package CI installs, direct and indirect, pinned (pip install -c): a fresh"
  echo "# machine gets what the last green run had. Regenerate with scripts/lock.sh."
  "$venv/bin/pip" freeze --exclude-editable | grep -vi '^mailpool'
} >"$root/constraints.txt"
