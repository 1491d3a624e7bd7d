#!/usr/bin/env bash
# The Packer plugin's docs, generated so that they cannot drift from the code:
#   1. packer-sdc struct-markdown turns the components' Config struct comments into partials
#      (go:generate lines in packer/; the tool puts them under packer/website/content/partials);
#   2. packer-sdc renderdocs expands the @include lines of packer/docs/*.md with them;
#   3. the result is laid out as .web-docs/ (README.md, metadata.hcl, components/<type>/<slug>/
#      README.md), the layout Packer's integration release reads.
# Usage: scripts/packer-docs.sh          regenerate partials and .web-docs/ in this tree
#        scripts/packer-docs.sh check    regenerate in a scratch copy; fail when they differ
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
partials=packer/website/content/partials
# docs source file -> .web-docs component directory (type as the integrations portal names it)
components=(
  "builder-local.md:builder/local"
  "provisioner-router.md:provisioner/router"
  "datasource-base-image.md:data-source/base-image"
  "postprocessor-catalog.md:post-processor/catalog"
)

generate() { # in the tree at $1
  cd "$1"
  rm -rf "$partials" # partials of removed structs go too
  go generate -run 'packer-sdc struct-markdown' ./packer/...
  local rendered; rendered=$(mktemp -d)
  local log
  if ! log=$(go tool -modfile="$root/tools/go.mod" packer-sdc renderdocs -src packer/docs -partials "$partials" -dst "$rendered" 2>&1); then
    echo "$log" >&2; echo "packer/docs: renderdocs failed (an @include of a missing partial?)" >&2
    rm -rf "$rendered"; exit 1
  fi
  if grep -rl "@include '" "$rendered"; then
    echo "packer/docs: an @include names no partial (above)" >&2; rm -rf "$rendered"; exit 1
  fi
  rm -rf .web-docs && mkdir -p .web-docs
  cp "$rendered/README.md" "$rendered/metadata.hcl" .web-docs/
  for c in "${components[@]}"; do
    mkdir -p ".web-docs/components/${c#*:}"
    cp "$rendered/${c%%:*}" ".web-docs/components/${c#*:}/README.md"
  done
  rm -rf "$rendered"
}

case "${1:-generate}" in
generate) generate "$root" ;;
check)
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  git -C "$root" ls-files -co --exclude-standard | grep -v -e '^\.web-docs/' -e "^$partials/" |
    (cd "$root" && tar -cf - -T -) | tar -xf - -C "$tmp"
  (generate "$tmp")
  stale=0
  for d in "$partials" .web-docs; do
    diff -ru "$root/$d" "$tmp/$d" || stale=1
  done
  if [ $stale = 1 ]; then
    echo "Packer plugin docs are stale: run 'make packer-docs' and commit the result." >&2
    exit 1
  fi
  ;;
*) echo "usage: $0 [generate|check]" >&2; exit 2 ;;
esac
