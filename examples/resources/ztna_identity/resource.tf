# The integration runtime that dials the customer's services.
resource "ztna_identity" "runtime" {
  name      = "integration-runtime-prod"
  roles     = ["integrations"]
  token_ttl = "1h"
}

# Run `ztna identity enroll --token <token>` on the runtime's host within the hour.
output "runtime_enrollment_token" {
  value     = ztna_identity.runtime.enrollment_token
  sensitive = true
}
