# A redundant pair of edge routers: two ztna_routers with the same roles, each with its own
# one-time key and its own host, in two failure domains. A service hosted by these roles keeps
# working when one host, zone or cloud is lost: the hub routes new streams to the other router.
terraform {
  required_version = ">= 1.11" # write-only arguments
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

locals {
  hosts = { a = var.placements[0], b = var.placements[1] }
}

resource "ztna_router" "this" {
  for_each = local.hosts
  name     = "${var.name}-${each.key}"
  roles    = var.roles
}

# Keys that never rest in state: minted on every run, used only by a host being created.
ephemeral "ztna_registration_key" "this" {
  for_each  = local.hosts
  router_id = ztna_router.this[each.key].id
  ttl       = "30m"
  # A replaced host (a new image) enrols the same, already enrolled router: the controller
  # refuses that to a key created without this.
  allow_reenrollment = true
}

resource "ztna_router_host" "this" {
  for_each                    = local.hosts
  name                        = "${var.name}-${each.key}"
  router_id                   = ztna_router.this[each.key].id
  registration_key_wo         = ephemeral.ztna_registration_key.this[each.key].key
  registration_key_wo_version = var.key_version
  size                        = each.value.local == null ? var.size : null
  image                       = each.value.image
  dns_servers                 = var.dns_servers
  tags                        = each.value.local == null ? var.tags : null

  dynamic "egress" {
    for_each = var.egress
    content {
      destination = egress.value.destination
      protocol    = egress.value.protocol
      ports       = egress.value.ports
    }
  }

  dynamic "aws" {
    for_each = each.value.aws[*]
    iterator = placement
    content {
      region           = placement.value.region
      subnet_id        = placement.value.subnet_id
      assign_public_ip = placement.value.assign_public_ip
    }
  }

  dynamic "gcp" {
    for_each = each.value.gcp[*]
    iterator = placement
    content {
      project          = placement.value.project
      zone             = placement.value.zone
      network          = placement.value.network
      subnetwork       = placement.value.subnetwork
      assign_public_ip = placement.value.assign_public_ip
    }
  }

  dynamic "azure" {
    for_each = each.value.azure[*]
    iterator = placement
    content {
      subscription_id = placement.value.subscription_id
      resource_group  = placement.value.resource_group
      location        = placement.value.location
      subnet_id       = placement.value.subnet_id
      zone            = placement.value.zone
    }
  }

  dynamic "local" {
    for_each = each.value.local[*]
    iterator = placement
    content {
      state_root    = placement.value.state_root
      isolation     = placement.value.isolation
      router_binary = placement.value.router_binary
    }
  }
}
