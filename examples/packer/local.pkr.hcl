# A hardened ztna router disk image for on-prem/KVM hosts (raw or qcow2), built on this machine:
# Debian from mmdebstrap, provisioned in a chroot, recorded in the image catalog.
#
#   packer init examples/packer/local.pkr.hcl   # or: packer plugins install --path bin/packer-plugin-ztna github.com/ztna/ztna
#   sudo packer build -var router_binary=bin/ztna-router -var router_version=$(make -s version) examples/packer/local.pkr.hcl
#
# Boot it with the registration key in /etc/ztna/registration-key (see packer/docs/builder-local.md).

packer {
  required_plugins {
    ztna = {
      source  = "github.com/ztna/ztna"
      version = ">= 0.0.0"
    }
  }
}

variable "router_binary" {
  type        = string
  description = "Path of the ztna-router executable (linux/amd64) to install."
}

variable "router_version" {
  type        = string
  description = "Version of that router, e.g. 1.2.3."
}

variable "attestation_key_file" {
  type        = string
  default     = ""
  description = "Ed25519 private key (PEM PKCS#8: openssl genpkey -algorithm ed25519) that signs the image's attestation; controllers trust its public key with attestation_keys. Empty: unsigned."
}

variable "extra_packages" {
  type        = list(string)
  default     = []
  description = "Debian packages added to the base, e.g. [\"openssh-server\"] (then set ssh_allow_from to reach it)."
}

variable "ssh_allow_from" {
  type    = list(string)
  default = []
}

variable "output_directory" {
  type    = string
  default = "output-ztna-router-local"
}

variable "catalog_path" {
  type        = string
  default     = "images.json"
  description = "Image catalog the build is recorded in (read by the ztna_image Terraform data source)."
}

variable "environment" {
  type    = string
  default = "dev"
}

variable "format" {
  type    = string
  default = "qcow2"
}

source "ztna-local" "router" {
  output_directory = var.output_directory
  format           = var.format
  disk_size        = "2G"
  extra_packages   = var.extra_packages
  hostname         = "ztna-router"
}

build {
  sources = ["source.ztna-local.router"]

  provisioner "ztna-router" {
    router_binary        = var.router_binary
    router_version       = var.router_version
    cloud                = "local" # first boot reads the key from /etc/ztna/registration-key
    attestation_key_file = var.attestation_key_file
    ssh_allow_from       = var.ssh_allow_from
  }

  post-processor "ztna-catalog" {
    catalog_path   = var.catalog_path
    environment    = var.environment
    router_version = var.router_version
  }
}
