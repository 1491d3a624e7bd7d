terraform {
  required_providers {
    ztna = {
      source = "ztna/ztna"
    }
  }
}

provider "ztna" {} # ZTNA_ADDR, ZTNA_TOKEN, ZTNA_CA_FINGERPRINT

locals {
  customer = "customer-a"
}

# 1. Two edge routers in distinct failure domains (here: two clouds).
resource "ztna_router" "edge" {
  for_each = toset(["aws-eu-west-1", "gcp-europe-west1"])
  name     = "${local.customer}-${each.key}"
  roles    = [local.customer]
}

# 2. One registration key per router, rotated by changing the keeper.
resource "ztna_registration_key" "edge" {
  for_each  = ztna_router.edge
  router_id = each.value.id
  ttl       = "24h"
  # A key from a rotation re-enrols a router that is already enrolled.
  allow_reenrollment = true
  keepers = {
    rotation = "2026-11"
  }
}

# 3. The endpoint the customer used to request in a ticket.
resource "ztna_service" "prod_db" {
  name         = "prod-db"
  address      = "prod-db.customerdomain.me"
  port         = 5432
  router_roles = [local.customer]
}

# 4. Who may dial it: the integration runtime, and nothing else.
resource "ztna_identity" "runtime" {
  name  = "integration-runtime"
  roles = ["integrations"]
}

resource "ztna_service_policy" "runtime_to_db" {
  name           = "integrations-to-prod-db"
  identity_roles = ["integrations"]
  service_names  = [ztna_service.prod_db.name]
}

# 5. What the customer's firewall team must open (outbound only).
data "ztna_egress_rules" "edge" {
  router_roles = [local.customer]
  dns_servers  = ["10.0.0.2"]
  depends_on   = [ztna_service.prod_db]
}

# 6. How big the router VMs should be.
data "ztna_router_sizing" "edge" {
  tier = "low-med"
}

output "registration_keys" {
  value     = { for k, v in ztna_registration_key.edge : k => v.key }
  sensitive = true
}

output "firewall_rules" {
  value = [for r in data.ztna_egress_rules.edge.rules : "${r.protocol} ${r.destination}:${r.ports}"]
}

output "instance_types" {
  value = { for cloud, it in data.ztna_router_sizing.edge.instance_types : cloud => it.name }
}

output "prod_db_failure_domains" {
  value = ztna_service.prod_db.failure_domains
}
