#!/usr/bin/env bash
# Builds the Packer plugin's release in the layout `packer init` and `packer plugins install`
# expect (what goreleaser makes for hashicorp/packer-plugin-scaffolding):
#   $DIST/packer-plugin-ztna_v<version>_x<api>_<os>_<arch>.zip   holding the binary
#        packer-plugin-ztna_v<version>_x<api>_<os>_<arch>
#   $DIST/packer-plugin-ztna_v<version>_SHA256SUMS               sha256sum lines of the zips
# <version> is scripts/version.sh's without build metadata (Packer drops it from file names
# too); <api> the plugin protocol version the binary reports (`describe`).
# Environment: DIST (default dist/), PLUGIN_PLATFORMS (default "linux/amd64 linux/arm64").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dist=${DIST:-$root/dist}
platforms=${PLUGIN_PLATFORMS:-linux/amd64 linux/arm64}
version=${VERSION:-$(scripts/version.sh)}
ldflags="-s -w -X github.com/ztna/ztna/internal/version.Version=$version"
name=packer-plugin-ztna

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# The host build tells the API version, and that the binary reports the version it is named by
# (built as the release binaries are, so that the host platform's release build reuses it).
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$work/host" ./cmd/$name
desc=$("$work/host" describe)
reported=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$desc")
api=$(sed -n 's/.*"api_version":"\([^"]*\)".*/\1/p' <<<"$desc")
if [ "$reported" != "${version#v}" ]; then
  echo "plugin-release: the binary reports version '$reported', want '${version#v}' (a semantic version: see scripts/version.sh)" >&2
  exit 1
fi
if [[ ! $api =~ ^x[0-9]+\.[0-9]+$ ]]; then
  echo "plugin-release: the binary reports API version '$api', want xMAJOR.MINOR" >&2
  exit 1
fi
plain=${reported%%+*}

mkdir -p "$dist"
rm -f "$dist/${name}_v"*
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  bin=${name}_v${plain}_${api}_${os}_${arch}
  [ "$os" = windows ] && bin+=.exe
  mkdir -p "$work/$p"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$work/$p/$bin" ./cmd/$name
  (cd "$work/$p" && rm -f "$dist/${bin%.exe}.zip" && zip -q -X "$dist/${bin%.exe}.zip" "$bin")
done
(cd "$dist" && sha256sum "${name}_v${plain}_"*.zip > "${name}_v${plain}_SHA256SUMS")
ls -1 "$dist"/${name}_v"${plain}"_*
