resource "ztna_router" "edge" {
  name  = "edge-aws-eu-west-1a"
  roles = ["customer-a"]
}

# A key that never lands in state or in a plan file. Terraform mints a new one on every
# plan and apply, and revokes it at the end of the run if nothing enrolled with it (the
# router host below enrols during the apply).
ephemeral "ztna_registration_key" "edge" {
  router_id = ztna_router.edge.id
  ttl       = "30m"
  # The host's replacement enrols the already enrolled router again: allow it. The key is
  # revoked at the end of the run, so this opens no lasting window.
  allow_reenrollment = true
}

# Hand it only to something that accepts ephemeral values: a write-only attribute
# (Terraform 1.11+) such as the router host's registration_key_wo ...
resource "ztna_router_host" "edge" {
  name                        = "edge-a"
  router_id                   = ztna_router.edge.id
  registration_key_wo         = ephemeral.ztna_registration_key.edge.key
  registration_key_wo_version = 1

  aws {
    region    = "eu-west-1"
    subnet_id = "subnet-0a1b2c3d4e5f67890"
  }
}

# ... or a secret store's write-only value that a router VM reads at first boot. Such a
# consumer enrols after Terraform finishes, so its key must outlive the run:
#
#   ephemeral "ztna_registration_key" "boot" {
#     router_id     = ztna_router.edge.id
#     ttl           = "30m"
#     revoke_unused = false # expires unused after ttl instead
#   }
#
#   resource "google_secret_manager_secret_version" "edge_key" {
#     secret                 = google_secret_manager_secret.edge_key.id
#     secret_data_wo         = ephemeral.ztna_registration_key.boot.key
#     secret_data_wo_version = 1
#   }
