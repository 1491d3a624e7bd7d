# A redundant pair of edge routers: two ztna_routers with the same roles, each with its own
# one-time key and its own host, in two failure domains. A service hosted by these roles keeps
# working when one host, zone or cloud is lost: the hub routes new streams to the other router.
#
# Rolling replacement. A change that needs a new host (image, size, placement, key_version)
# replaces the pair one host at a time, without a failed dial:
#  1. host a's replacement is created beside the old host a, with a router of its own (a new
#     router, so that its enrolment supersedes nobody), and the apply waits until it is online
#     and hosts the service (ztna_router_host waits for its router);
#  2. only then is host b's replacement created (module b depends on module a), and waited for;
#  3. then the old hosts go, b's first: each drains on SIGTERM (new streams go to the other
#     routers at once, open ones finish) before its router is deleted.
# Names carry a hash of what replaces the host (the slot's generation), so the old and the new
# host and router of a slot never share a name while both exist.
terraform {
  required_version = ">= 1.11" # write-only arguments
  required_providers {
    ztna = { source = "ztna/ztna" }
  }
}

# The slots are two module calls, not one for_each, because Terraform orders resources and
# modules, not the instances of one: b's replacement must wait until a's is online.
module "a" {
  source = "./slot"

  name        = "${var.name}-a"
  roles       = var.roles
  placement   = var.placements[0]
  size        = var.size
  dns_servers = var.dns_servers
  egress      = var.egress
  tags        = var.tags
  key_version = var.key_version
}

module "b" {
  source = "./slot"

  name        = "${var.name}-b"
  roles       = var.roles
  placement   = var.placements[1]
  size        = var.size
  dns_servers = var.dns_servers
  egress      = var.egress
  tags        = var.tags
  key_version = var.key_version

  # The rolling order: b is created (and replaced) only after a is online.
  depends_on = [module.a]
}

# State written by earlier versions of this module: one for_each router, two host resources
# (and before that one for_each host resource).
moved {
  from = ztna_router_host.this["a"]
  to   = ztna_router_host.a
}

moved {
  from = ztna_router_host.this["b"]
  to   = ztna_router_host.b
}

moved {
  from = ztna_router_host.a
  to   = module.a.ztna_router_host.this
}

moved {
  from = ztna_router_host.b
  to   = module.b.ztna_router_host.this
}

moved {
  from = ztna_router.this["a"]
  to   = module.a.ztna_router.this
}

moved {
  from = ztna_router.this["b"]
  to   = module.b.ztna_router.this
}

moved {
  from = terraform_data.generation["a"]
  to   = module.a.terraform_data.generation
}

moved {
  from = terraform_data.generation["b"]
  to   = module.b.terraform_data.generation
}
