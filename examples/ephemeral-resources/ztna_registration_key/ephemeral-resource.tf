resource "ztna_router" "edge" {
  name  = "edge-gcp-europe-west1"
  roles = ["customer-a"]
}

# A key that never lands in state or in a plan file. Terraform mints a new one on every
# plan and apply; unused keys expire after ttl, so keep it short.
ephemeral "ztna_registration_key" "edge" {
  router_id = ztna_router.edge.id
  ttl       = "30m"
}

# Hand it only to something that accepts ephemeral values, such as a write-only attribute
# (Terraform 1.11+) of a secret store the router VM reads at first boot, e.g.:
#
#   resource "google_secret_manager_secret_version" "edge_key" {
#     secret                 = google_secret_manager_secret.edge_key.id
#     secret_data_wo         = ephemeral.ztna_registration_key.edge.key
#     secret_data_wo_version = 1
#   }
