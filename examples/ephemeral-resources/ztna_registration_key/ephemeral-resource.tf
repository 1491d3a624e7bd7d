resource "ztna_router" "edge" {
  name  = "edge-aws-eu-west-1a"
  roles = ["customer-a"]
}

# A key that never lands in state or in a plan file. Terraform mints a new one on every
# plan and apply; unused keys expire after ttl, so keep it short.
ephemeral "ztna_registration_key" "edge" {
  router_id = ztna_router.edge.id
  ttl       = "30m"
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

# ... or a secret store's write-only value that a router VM reads at first boot, e.g.
#
#   resource "google_secret_manager_secret_version" "edge_key" {
#     secret                 = google_secret_manager_secret.edge_key.id
#     secret_data_wo         = ephemeral.ztna_registration_key.edge.key
#     secret_data_wo_version = 1
#   }
