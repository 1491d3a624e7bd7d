resource "ztna_identity" "runtime" {
  name  = "integration-runtime-prod"
  roles = ["integrations"]
}

# A token that never lands in state or in a plan file. Every plan and apply reissues it (which
# revokes the identity's earlier unused tokens, the resource's enrollment_token among them) and
# revokes it again at the end of the run unless something enrolled with it meanwhile.
ephemeral "ztna_identity_enrollment_token" "runtime" {
  identity_id = ztna_identity.runtime.id
  ttl         = "10m"
}

variable "runtime_host" {
  type        = string
  description = "Address of the integration runtime's host."
}

# Enrol the runtime's host during the apply: provisioner and connection blocks take ephemeral
# values. The token goes to a 0600 file by a shell builtin, so no process list shows it.
resource "terraform_data" "enroll_runtime" {
  input = ztna_identity.runtime.id

  connection {
    type = "ssh"
    host = var.runtime_host
    user = "ztna"
  }

  provisioner "remote-exec" {
    inline = [
      "umask 077 && printf %s '${ephemeral.ztna_identity_enrollment_token.runtime.token}' > /run/ztna-token",
      "ztna identity enroll --token-file /run/ztna-token --out /var/lib/ztna/identity.json; rc=$?; rm -f /run/ztna-token; exit $rc",
    ]
  }
}
