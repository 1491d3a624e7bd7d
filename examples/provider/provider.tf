terraform {
  required_providers {
    ztna = {
      source = "ztna/ztna"
    }
  }
}

# Address, token and CA fingerprint usually come from the environment:
#   export ZTNA_ADDR=https://controller.example.com
#   export ZTNA_TOKEN=...            # management API token
#   export ZTNA_CA_FINGERPRINT=sha256:...
provider "ztna" {}

# Or explicitly (keep the token out of files: pass it in a variable).
variable "ztna_token" {
  type      = string
  sensitive = true
}

provider "ztna" {
  alias          = "explicit"
  address        = "https://controller.example.com"
  token          = var.ztna_token
  ca_fingerprint = "sha256:4c6f0a5e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5"
}
