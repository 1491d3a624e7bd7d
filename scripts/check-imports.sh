#!/usr/bin/env bash
# Fails when an import runs the wrong way (make lint). The layering, bottom up:
#   internal/            shared by everything; imports nothing of the module outside internal/
#   cloud/               platform drivers; imports internal/ (and its own packages)
#   controller/ router/ client/   the three programs' parts; each imports internal/ only
#                        (router/ may read cloud's failure-domain format from cloud itself)
#   provider/ packer/    import cloud/ and internal/ (packer/ also the packaging/ it installs)
#   cmd/ tests/          wire everything together
# Test-helper packages (a name starting or ending with "test": client/clienttest, router/testnet) start real parts of
# the system for tests and may import across, but nothing outside tests/ and _test.go may import them
# unless it is itself a test helper.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)

# allowed <importer top dir> → extended regexp of the module's top dirs it may import
allowed() {
  case $1 in
    internal) echo '^internal$' ;;
    cloud) echo '^(internal|cloud)$' ;;
    controller) echo '^(internal|controller)$' ;;
    router) echo '^(internal|router|cloud)$' ;;
    client) echo '^(internal|client)$' ;;
    provider) echo '^(internal|cloud|provider)$' ;;
    packer) echo '^(internal|cloud|packer|packaging)$' ;;
    *) echo '.' ;; # cmd, tests, the provider's main package
  esac
}

# go list runs first, on its own: a package that does not load (an import cycle) fails the check.
pkgs=$(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
tests=$(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./internal/...)

bad=0
while read -r pkg imports; do
  rel=${pkg#"$mod"}; rel=${rel#/}
  top=${rel%%/*}; [ -n "$rel" ] || top=main
  helper=0; case ${rel##*/} in *test | test*) helper=1 ;; esac
  want=$(allowed "$top")
  for imp in $imports; do
    [[ $imp == "$mod"/* ]] || continue
    irel=${imp#"$mod"/}; itop=${irel%%/*}
    if [[ $top == internal && $itop != internal ]] || { [[ $helper == 0 ]] && ! [[ $itop =~ $want ]]; }; then
      echo "wrong-way import: $rel imports $irel ($top/ may import only what $want matches; see scripts/check-imports.sh)"
      bad=1
    fi
    if [[ $helper == 0 && (${irel##*/} == *test || ${irel##*/} == test*) && $top != tests && $top != cmd ]]; then
      echo "wrong-way import: $rel (not a test helper) imports the test helper $irel"
      bad=1
    fi
  done
done <<<"$pkgs"

# Test files (in-package and external) obey the same rule for internal/: a test of internal/
# that needs a router or a controller belongs in tests/.
while read -r pkg imports; do
  rel=${pkg#"$mod"/}
  [[ $rel == internal/* ]] || continue
  for imp in $imports; do
    [[ $imp == "$mod"/* ]] || continue
    irel=${imp#"$mod"/}
    [[ ${irel%%/*} == internal ]] || { echo "wrong-way import: a test of $rel imports $irel"; bad=1; }
  done
done <<<"$tests"
exit $bad
