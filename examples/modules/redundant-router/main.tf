# A redundant pair of edge routers: two ztna_routers with the same roles, each with its own
# one-time key and its own host, in two failure domains. A service hosted by these roles keeps
# working when one host, zone or cloud is lost: the hub routes new streams to the other router.
#
# Rolling replacement. A change that needs a new host (image, size, placement, key_version)
# replaces the pair one host at a time, without a failed dial:
#  1. host a's replacement is created beside the old host a, with a router of its own (a new
#     router, so that its enrolment supersedes nobody), and the apply waits until it is online
#     and hosts the service (ztna_router_host waits for its router);
#  2. only then is host b's replacement created (host b depends on host a), and waited for;
#  3. then the old hosts go, b's first: each drains on SIGTERM (new streams go to the other
#     routers at once, open ones finish) before its router is deleted.
# Names carry a hash of what replaces the host (local.generation), so the old and the new
# host and router of a slot never share a name while both exist.
terraform {
  required_version = ">= 1.11" # write-only arguments
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

locals {
  hosts = { a = var.placements[0], b = var.placements[1] }
  # Everything that replaces a slot's host, hashed into its names. dns_servers replace local
  # hosts only (a local router is started with the first one); tags and egress change in place.
  generation = { for k, p in local.hosts : k => substr(sha256(jsonencode({
    placement   = p
    size        = p.local == null ? var.size : null
    dns_servers = p.local != null ? var.dns_servers : null
    key_version = var.key_version
  })), 0, 6) }
  host = { for k, p in local.hosts : k => {
    name  = "${var.name}-${k}-${local.generation[k]}"
    size  = p.local == null ? var.size : null
    image = p.image
  } }
}

# A new generation replaces the slot's router (ztna_router takes a new name in place).
resource "terraform_data" "generation" {
  for_each = local.hosts
  input    = local.generation[each.key]
}

resource "ztna_router" "this" {
  for_each = local.hosts
  name     = local.host[each.key].name
  roles    = var.roles

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [terraform_data.generation[each.key]]
  }
}

# Keys that never rest in state: minted on every run, used only by a host being created (one
# left unused is revoked when the run ends).
ephemeral "ztna_registration_key" "this" {
  for_each  = local.hosts
  router_id = ztna_router.this[each.key].id
  ttl       = "30m"
  # A replaced host (a new image) enrols the same, already enrolled router: the controller
  # refuses that to a key created without this.
  allow_reenrollment = true
}

# Hosts a and b are two resources, not one for_each, because Terraform orders resources, not the
# instances of one: b's replacement must wait until a's is online. The blocks are the same but
# for the slot key and b's depends_on.
resource "ztna_router_host" "a" {
  name                = local.host.a.name
  router_id           = ztna_router.this["a"].id
  registration_key_wo = ephemeral.ztna_registration_key.this["a"].key
  size                = local.host.a.size
  image               = local.host.a.image
  dns_servers         = var.dns_servers
  tags                = var.tags

  dynamic "egress" {
    for_each = var.egress
    content {
      destination = egress.value.destination
      protocol    = egress.value.protocol
      ports       = egress.value.ports
    }
  }

  dynamic "aws" {
    for_each = local.hosts.a.aws[*]
    iterator = placement
    content {
      region           = placement.value.region
      subnet_id        = placement.value.subnet_id
      assign_public_ip = placement.value.assign_public_ip
    }
  }

  dynamic "gcp" {
    for_each = local.hosts.a.gcp[*]
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
    for_each = local.hosts.a.azure[*]
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
    for_each = local.hosts.a.local[*]
    iterator = placement
    content {
      state_root    = placement.value.state_root
      isolation     = placement.value.isolation
      router_binary = placement.value.router_binary
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "ztna_router_host" "b" {
  name                = local.host.b.name
  router_id           = ztna_router.this["b"].id
  registration_key_wo = ephemeral.ztna_registration_key.this["b"].key
  size                = local.host.b.size
  image               = local.host.b.image
  dns_servers         = var.dns_servers
  tags                = var.tags

  dynamic "egress" {
    for_each = var.egress
    content {
      destination = egress.value.destination
      protocol    = egress.value.protocol
      ports       = egress.value.ports
    }
  }

  dynamic "aws" {
    for_each = local.hosts.b.aws[*]
    iterator = placement
    content {
      region           = placement.value.region
      subnet_id        = placement.value.subnet_id
      assign_public_ip = placement.value.assign_public_ip
    }
  }

  dynamic "gcp" {
    for_each = local.hosts.b.gcp[*]
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
    for_each = local.hosts.b.azure[*]
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
    for_each = local.hosts.b.local[*]
    iterator = placement
    content {
      state_root    = placement.value.state_root
      isolation     = placement.value.isolation
      router_binary = placement.value.router_binary
    }
  }

  # The rolling order: b is created (and replaced) only after a is online.
  depends_on = [ztna_router_host.a]

  lifecycle {
    create_before_destroy = true
  }
}

# State written by earlier versions of this module (one for_each host resource).
moved {
  from = ztna_router_host.this["a"]
  to   = ztna_router_host.a
}

moved {
  from = ztna_router_host.this["b"]
  to   = ztna_router_host.b
}
