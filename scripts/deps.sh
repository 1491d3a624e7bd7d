#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need, only when one is missing.
# Usage: scripts/deps.sh [group...]   groups: test (default), bench, image, quickstart, release
set -euo pipefail

declare -A groups=(
  [test]="iproute2 nftables curl ca-certificates postgresql mmdebstrap fdisk qemu-utils lintian dnsmasq-base zip"
  [bench]="openssh-server openssh-client stunnel4 procps"
  [image]="mmdebstrap fdisk qemu-utils qemu-system-x86"
  [quickstart]="iproute2 nftables curl"
  [release]="zip"
)

want=()
for g in "${@:-test}"; do
  for p in ${groups[$g]:?unknown group $g}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
  done
done
[ ${#want[@]} -eq 0 ] && exit 0

echo "deps: installing ${want[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
