# The integration runtime that dials the customer's services.
resource "ztna_identity" "runtime" {
  name      = "integration-runtime-prod"
  roles     = ["integrations"]
  token_ttl = "1h"

  # Change this to reissue the enrolment token in place (same identity id), e.g. when the
  # token expired unused or the host was off for longer than its certificate's life.
  token_keepers = {
    rotation = "2026-11-25"
  }
}

# Run `ztna identity enroll --token <token>` on the runtime's host within the hour. This token
# rests in state; the ztna_identity_enrollment_token ephemeral resource hands one out that does not.
output "runtime_enrollment_token" {
  value     = ztna_identity.runtime.enrollment_token
  sensitive = true
}
