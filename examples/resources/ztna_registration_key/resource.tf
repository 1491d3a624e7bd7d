resource "ztna_router" "edge" {
  name  = "edge-aws-eu-west-1"
  roles = ["customer-a"]
}

# A one-time key to enrol the router: `ztna-router enroll --key <key>` on the router host,
# or hand it to the VM through instance metadata.
resource "ztna_registration_key" "edge" {
  router_id = ztna_router.edge.id
  ttl       = "24h"

  # Change a keeper to rotate the key (for example when the VM is rebuilt).
  keepers = {
    rotation = "2026-11"
  }
}

output "edge_key_expires_at" {
  value = ztna_registration_key.edge.expires_at
}
