# One slot of the redundant pair: a router, a one-time key that never rests in state, and the
# host that enrols with it. The parent module calls it twice (a, b), b after a, which is what
# makes a replacement roll one slot at a time.
terraform {
  required_version = ">= 1.11" # write-only arguments
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

locals {
  local_host = var.placement.local != null
  size       = local.local_host ? null : var.size
  # Everything that replaces the host, hashed into its name. dns_servers replace local hosts only
  # (a local router is started with the first one); tags and egress change in place.
  generation = substr(sha256(jsonencode({
    placement   = var.placement
    size        = local.size
    dns_servers = local.local_host ? var.dns_servers : null
    key_version = var.key_version
  })), 0, 6)
  name = "${var.name}-${local.generation}"
}

# A new generation replaces the slot's router (ztna_router takes a new name in place), so that
# the new host's enrolment supersedes nobody while the old host still serves.
resource "terraform_data" "generation" {
  input = local.generation
}

resource "ztna_router" "this" {
  name  = local.name
  roles = var.roles

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [terraform_data.generation]
  }
}

# Minted on every run, used only by a host being created (one left unused is revoked when the
# run ends).
ephemeral "ztna_registration_key" "this" {
  router_id = ztna_router.this.id
  ttl       = "30m"
  # A replaced host (a new image) enrols the same, already enrolled router: the controller
  # refuses that to a key created without this.
  allow_reenrollment = true
}

resource "ztna_router_host" "this" {
  name                = local.name
  router_id           = ztna_router.this.id
  registration_key_wo = ephemeral.ztna_registration_key.this.key
  size                = local.size
  image               = var.placement.image
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
    for_each = var.placement.aws[*]
    iterator = placement
    content {
      region           = placement.value.region
      subnet_id        = placement.value.subnet_id
      assign_public_ip = placement.value.assign_public_ip
    }
  }

  dynamic "gcp" {
    for_each = var.placement.gcp[*]
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
    for_each = var.placement.azure[*]
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
    for_each = var.placement.local[*]
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
