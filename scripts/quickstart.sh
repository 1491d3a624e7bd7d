#!/usr/bin/env bash
# ztna quickstart: a whole overlay on this machine, declared with Terraform.
#
#   scripts/quickstart.sh up     (make quickstart)       build it and send a request through it
#   scripts/quickstart.sh down   (make quickstart-down)  remove every process, namespace, nftables
#                                                        table and file it created
#
# up starts a dev controller, builds a private "customer network" (ztna-demo: a network namespace
# with a customer DNS server and an HTTP service the host cannot reach), applies
# examples/quickstart (two routers in their own network namespaces, a service, a client identity
# and a policy) with the provider from bin/ through dev_overrides (no terraform init), then curls
# the service by name through `ztna tunnel` and shows which router carried the request.
# Everything it creates lives under .quickstart/ (and in the kernel: namespaces, veths, nftables
# tables, which down removes). Needs root, terraform >= 1.11, iproute2, nftables and curl; expects
# `make build` to have run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
qs="$root/.quickstart"
bin="$root/bin"
example="$root/examples/quickstart"
tunnel_dns="127.0.0.77" # the tunnel's DNS server (port 53, so resolv.conf can name it)
started=$(date +%s)

step() { printf '\n\033[1m==> [%3ss] %s\033[0m\n' "$(($(date +%s) - started))" "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
  printf '\nquickstart: %s\n' "$*" >&2
  exit 1
}

# alive PIDFILE: the process recorded there still runs.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop PIDFILE: SIGTERM, then SIGKILL after 10 s; removes the file.
stop() {
  local pid
  [ -s "$1" ] || return 0
  pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# Terraform with the provider from bin/, never a registry, in .quickstart/terraform: a copy of
# examples/quickstart, so that the state and everything else terraform writes stays in
# .quickstart/.
tf() {
  TF_CLI_CONFIG_FILE="$qs/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 terraform -chdir="$qs/terraform" "$@"
}

load_env() {
  set -a
  # shellcheck disable=SC1091
  . "$qs/controller/ztna.env"
  set +a
}

# pid_in DIR: the process running in a router host's state directory (the local driver starts
# the router there).
pid_in() {
  local found
  found=$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$1" -printf '%h\n' 2>/dev/null | head -n 1)
  [ -n "$found" ] || return 1
  echo "${found#/proc/}"
}

# streams DIR: streams the router of that host has carried to its targets, from its metrics
# endpoint inside its namespace.
streams() {
  local pid ns
  pid=$(pid_in "$1") || { echo 0; return; }
  ns=$(ip netns identify "$pid")
  ip netns exec "$ns" curl -s -m 2 http://127.0.0.1:9262/metrics |
    awk '/^ztna_router_streams_total\{result="ok"\}/ {n=$2} END {print n+0}'
}

require() {
  [ "$(id -u)" -eq 0 ] || die "the quickstart needs root (network namespaces, veth pairs, nftables): run 'sudo make quickstart'"
  "$root/scripts/deps.sh" quickstart
  local t
  for t in ip nft curl unshare; do
    command -v "$t" >/dev/null || die "'$t' is missing: install it (scripts/deps.sh quickstart installs iproute2, nftables and curl)"
  done
  command -v terraform >/dev/null || die "terraform is missing: install Terraform 1.11 or newer"
  for t in terraform-provider-ztna ztna-controller ztna-router ztna; do
    [ -x "$bin/$t" ] || die "bin/$t is missing: run 'make build' (make quickstart does)"
  done
}

up() {
  require
  mkdir -p "$qs"
  chmod 700 "$qs"

  step "Building the demo network tool (bin/ztna-demo)"
  (cd "$root" && go build -trimpath -o "$bin/ztna-demo" ./cmd/ztna-demo)

  step "Starting a dev controller (edge API, control channel, fabric hub) in .quickstart/controller"
  if alive "$qs/controller.pid"; then
    info "already running (pid $(cat "$qs/controller.pid"))"
  else
    mkdir -p "$qs/controller"
    setsid "$bin/ztna-controller" dev --data-dir "$qs/controller" >"$qs/controller.log" 2>&1 </dev/null &
    echo $! >"$qs/controller.pid"
  fi
  for _ in $(seq 150); do
    if [ -s "$qs/controller/ztna.env" ] && (load_env && "$bin/ztna" status --timeout 1s >/dev/null 2>&1); then break; fi
    alive "$qs/controller.pid" || die "the controller exited; its log ($qs/controller.log) ends with:
$(tail -n 20 "$qs/controller.log")"
    sleep 0.2
  done
  load_env
  "$bin/ztna" status --timeout 5s >/dev/null || die "the controller does not answer; see $qs/controller.log"
  info "edge API $ZTNA_ADDR, CA $ZTNA_CA_FINGERPRINT"

  step "Building the private customer network (namespace ztna-demo: customer DNS + HTTP service)"
  "$bin/ztna-demo" up --state-dir "$qs/demo" --env >"$qs/demo.env"
  # shellcheck disable=SC1091
  . "$qs/demo.env"
  info "service $DEMO_URL ($DEMO_FQDN → $DEMO_SERVICE_ADDR), customer DNS $DEMO_DNS_SERVER"
  if curl -s -m 2 -o /dev/null "http://$DEMO_SERVICE_ADDR/"; then
    die "the host reached the demo service directly: its firewall (nft table inet $DEMO_TABLE) is not in place"
  fi
  info "from this host: http://$DEMO_SERVICE_ADDR/ is refused, and $DEMO_FQDN is unknown to the host's DNS"

  step "terraform apply of examples/quickstart in .quickstart/terraform (provider from bin/ via dev_overrides, no terraform init)"
  cat >"$qs/terraformrc" <<EOF
provider_installation {
  dev_overrides {
    "ztna/ztna" = "$bin"
  }
}
EOF
  mkdir -p "$qs/terraform"
  cp "$example"/*.tf "$qs/terraform/"
  export TF_VAR_state_root="$qs/hosts" TF_VAR_dns_server="${DEMO_DNS_SERVER%:53}" TF_VAR_service_fqdn="$DEMO_FQDN"
  tf apply -auto-approve -input=false

  local addrs service_id
  addrs=$(tf output -raw private_addresses)
  service_id=$(tf output -raw service_id)

  step "Letting the router namespaces reach the customer network"
  # shellcheck disable=SC2086
  "$bin/ztna-demo" link-router --state-dir "$qs/demo" $addrs | sed 's/^/    /'
  info "waiting until both routers resolve $DEMO_FQDN with the customer DNS and reach it (health checks run every 10 s)"
  "$bin/ztna-demo" wait-service --id "$service_id" --routers 2 --timeout 60s

  step "Enrolling the client identity and starting 'ztna tunnel' (DNS on $tunnel_dns:53)"
  (umask 077 && tf output -raw identity_token >"$qs/client.token")
  if [ ! -s "$qs/client.identity" ]; then
    "$bin/ztna" identity enroll --token-file "$qs/client.token" --out "$qs/client.identity"
  fi
  rm -f "$qs/client.token"
  if ! alive "$qs/tunnel.pid"; then
    setsid "$bin/ztna" tunnel --identity "$qs/client.identity" --dns-listen "$tunnel_dns:53" >"$qs/tunnel.log" 2>&1 </dev/null &
    echo $! >"$qs/tunnel.pid"
  fi
  printf 'nameserver %s\n' "$tunnel_dns" >"$qs/resolv.conf"
  # curl resolves through the tunnel's DNS: a private mount namespace sees .quickstart/resolv.conf
  # as /etc/resolv.conf, exactly like a host whose resolver points at the tunnel.
  through_tunnel() {
    unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$qs/resolv.conf" "$@"
  }
  local resolved=""
  for _ in $(seq 100); do
    resolved=$(through_tunnel getent ahostsv4 "$DEMO_FQDN" 2>/dev/null | awk 'NR==1 {print $1}') && [ -n "$resolved" ] && break
    alive "$qs/tunnel.pid" || die "ztna tunnel exited; $qs/tunnel.log says:
$(tail -n 20 "$qs/tunnel.log")"
    sleep 0.1
  done
  [ -n "$resolved" ] || die "the tunnel's DNS does not answer $DEMO_FQDN; see $qs/tunnel.log"
  info "the tunnel answers $DEMO_FQDN → $resolved (a local listener that carries connections over the overlay)"

  step "curl $DEMO_URL through the tunnel"
  declare -A before
  local dir name
  for dir in "$qs"/hosts/*/; do
    dir=${dir%/}
    before[$dir]=$(streams "$dir")
  done
  through_tunnel curl -sS -m 15 "$DEMO_URL" | sed 's/^/    | /'
  for dir in "${!before[@]}"; do
    name=$(basename "$dir")
    if [ "$(streams "$dir")" -gt "${before[$dir]}" ]; then
      info "served by router host $name (its ztna_router_streams_total{result=\"ok\"} went up)"
    fi
  done

  step "Router status (ztna status)"
  "$bin/ztna" status | sed 's/^/    /'

  printf '\nquickstart is up in %ss. Try:\n' "$(($(date +%s) - started))"
  cat <<EOF
    set -a; . .quickstart/controller/ztna.env; set +a; bin/ztna status
    bin/ztna dial $DEMO_FQDN:80 --identity .quickstart/client.identity   (type: GET / HTTP/1.0, Enter twice)
    ip netns list                       # ztna-demo and one namespace per router
Tear it all down with:  make quickstart-down
EOF
}

down() {
  [ "$(id -u)" -eq 0 ] || die "quickstart-down needs root (it removes network namespaces and nftables tables): run 'sudo make quickstart-down'"
  if [ ! -d "$qs" ]; then
    echo "quickstart: nothing to remove"
    return 0
  fi
  # What must be gone at the end: every process and namespace of the quickstart.
  local pids=() namespaces=(ztna-demo) dir pid
  for f in "$qs"/*.pid; do [ -s "$f" ] && pids+=("$(cat "$f")"); done
  for dir in "$qs"/hosts/*/; do
    pid=$(pid_in "${dir%/}") || continue
    pids+=("$pid")
    namespaces+=("$(ip netns identify "$pid")")
  done
  [ -s "$qs/demo/demo.json" ] && pids+=("$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$qs/demo/demo.json")")

  step "Stopping ztna tunnel"
  stop "$qs/tunnel.pid"

  if [ -s "$qs/terraform/terraform.tfstate" ]; then
    step "terraform destroy (router hosts, routers, service, identity, policy)"
    if ! alive "$qs/controller.pid" && [ -s "$qs/controller/ztna.env" ]; then
      setsid "$bin/ztna-controller" dev --data-dir "$qs/controller" >>"$qs/controller.log" 2>&1 </dev/null &
      echo $! >"$qs/controller.pid"
      for _ in $(seq 150); do (load_env && "$bin/ztna" status --timeout 1s >/dev/null 2>&1) && break; sleep 0.2; done
    fi
    load_env
    export TF_VAR_state_root="$qs/hosts" TF_VAR_dns_server="0.0.0.0"
    tf destroy -auto-approve -input=false
  fi

  step "Removing the customer network"
  [ -x "$bin/ztna-demo" ] && "$bin/ztna-demo" down --state-dir "$qs/demo"

  step "Stopping the controller"
  stop "$qs/controller.pid"

  local left=() ns
  [ -n "$(ls -A "$qs/hosts" 2>/dev/null | grep -v '^\.lock$')" ] && left+=("router host state in $qs/hosts")
  for pid in "${pids[@]}"; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && left+=("process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-60))")
  done
  for ns in "${namespaces[@]}"; do
    [ -n "$ns" ] && [ -e "/run/netns/$ns" ] && left+=("network namespace $ns")
  done
  for ns in "${namespaces[@]}"; do
    [ -n "$ns" ] && nft list table ip "${ns//-/_}" >/dev/null 2>&1 && left+=("nftables table ip ${ns//-/_}")
  done
  nft list table inet ztna_demo >/dev/null 2>&1 && left+=("nftables table inet ztna_demo") # ztna-demo's, named after its namespace
  if [ ${#left[@]} -gt 0 ]; then
    die "left behind: $(printf '\n  %s' "${left[@]}")
fix the error above and run 'make quickstart-down' again"
  fi
  rm -rf "$qs"
  echo
  echo "quickstart: removed; checked that no process, network namespace or nftables table of it is left, and deleted .quickstart/"
}

case "${1:-}" in
up) up ;;
down) down ;;
*) die "usage: $0 up|down" ;;
esac
