#!/usr/bin/env bash
# Prints the version of this tree, for make build (linked into every binary), packages and the
# Packer plugin. The source of truth is internal/version/VERSION, the latest release; tags need
# not survive to a CI clone.
#   on a release commit (subject "Release X.Y.Z" where X.Y.Z is VERSION) with a clean tree: X.Y.Z
#   otherwise: X.Y.(Z+1)-dev+<12-digit commit>[.dirty]  (after the release, before the next one)
# The same rule as internal/version's for builds without make.
set -euo pipefail
cd "$(dirname "$0")/.."
release=$(tr -d '[:space:]' < internal/version/VERSION)
if [[ ! $release =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
  echo "internal/version/VERSION holds '$release': want MAJOR.MINOR.PATCH" >&2
  exit 1
fi
next="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.$((BASH_REMATCH[3] + 1))-dev"
if ! commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  echo "$next" # not a git checkout (source archive)
  exit 0
fi
dirty=""
if ! git diff --quiet HEAD -- 2>/dev/null; then dirty=".dirty"; fi
if [ -z "$dirty" ] && [ "$(git log -1 --format=%s HEAD)" = "Release $release" ]; then
  echo "$release"
else
  echo "$next+$commit$dirty"
fi
