# The quickstart: two edge routers on this machine, each a local process in its own network
# namespace behind an egress-only firewall, exposing a private HTTP service of the demo
# "customer network" (ztna-demo) to one client identity. `make quickstart` applies it with the
# provider from bin/ (dev_overrides) against a dev controller; see scripts/quickstart.sh.
terraform {
  required_version = ">= 1.11" # write-only arguments
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

# The controller comes from ZTNA_ADDR, ZTNA_TOKEN and ZTNA_CA_FINGERPRINT (ztna.env).
provider "ztna" {}

variable "state_root" {
  description = "Absolute directory for the local router hosts' state."
  type        = string
}

variable "isolation" {
  description = "\"netns\" (root): each router in its own network namespace; \"none\": plain processes."
  type        = string
  default     = "netns"
}

variable "service_fqdn" {
  description = "Name of the private service; only the customer DNS server resolves it."
  type        = string
  default     = "app.customer.internal"
}

variable "dns_server" {
  description = "The customer DNS server the routers resolve service names with (IP or IP:port)."
  type        = string
}

locals {
  role    = "quickstart"
  routers = toset(["a", "b"])
}

# The private service: customers used to file a ticket naming this endpoint.
resource "ztna_service" "app" {
  name         = "demo-app"
  address      = var.service_fqdn
  port         = 80
  router_roles = [local.role]
}

# Who may use it: one client identity, by role, and nothing else.
resource "ztna_identity" "client" {
  name      = "quickstart-client"
  roles     = ["quickstart-clients"]
  token_ttl = "1h"
}

resource "ztna_service_policy" "client_to_app" {
  name           = "quickstart-clients-to-demo-app"
  identity_roles = ["quickstart-clients"]
  service_names  = [ztna_service.app.name]
}

# Two routers with the same role: either one can carry the service.
resource "ztna_router" "edge" {
  for_each = local.routers
  name     = "quickstart-${each.key}"
  roles    = [local.role]
}

# One-time keys that never rest in state: a fresh one is minted on every run and only a newly
# created host uses it.
ephemeral "ztna_registration_key" "edge" {
  for_each  = local.routers
  router_id = ztna_router.edge[each.key].id
  ttl       = "15m"
  # A replaced host enrols its already enrolled router again.
  allow_reenrollment = true
}

resource "ztna_router_host" "edge" {
  for_each                    = local.routers
  name                        = "quickstart-${each.key}"
  router_id                   = ztna_router.edge[each.key].id
  registration_key_wo         = ephemeral.ztna_registration_key.edge[each.key].key
  registration_key_wo_version = 1
  dns_servers                 = [var.dns_server]

  local {
    state_root = var.state_root
    isolation  = var.isolation
  }

  timeouts {
    create = "2m"
  }

  # The allowlist follows the services in place; depending on this one lets the first apply
  # create the host with its target already allowed.
  depends_on = [ztna_service.app]
}

output "routers" {
  description = "Router host name → router id, failure domain, private address, state directory."
  value = {
    for k, h in ztna_router_host.edge : h.name => {
      router_id       = h.router_id
      failure_domain  = h.failure_domain
      private_address = h.private_address
      instance_id     = h.instance_id
      egress          = h.egress_allowlist
    }
  }
}

output "private_addresses" {
  description = "Namespace addresses of the router hosts, space-separated."
  value       = join(" ", [for h in ztna_router_host.edge : h.private_address])
}

output "service" {
  value = "${ztna_service.app.address}:${ztna_service.app.port}"
}

output "service_id" {
  value = ztna_service.app.id
}

output "identity_token" {
  description = "One-time enrolment token of the client identity (ztna identity enroll)."
  value       = ztna_identity.client.enrollment_token
  sensitive   = true
}
