#!/usr/bin/env bash
# Regenerates the provider docs in a scratch copy of the tree and fails when docs/ differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
git -C "$root" ls-files -co --exclude-standard | grep -v '^docs/' | (cd "$root" && tar -cf - -T -) | tar -xf - -C "$tmp"
cd "$tmp"
go tool -modfile="$root/tools/go.mod" tfplugindocs generate --provider-name ztna --rendered-provider-name ztna >/dev/null
if ! diff -ru "$root/docs" "$tmp/docs"; then
  echo "docs/ is stale: run 'make docs' and commit the result." >&2
  exit 1
fi
