# A hardened ztna router managed image on Azure from the Debian 12 (Gen2) marketplace image,
# recorded in the image catalog.
#
#   az login; packer build -var subscription_id=... -var resource_group=ztna-images \
#     -var router_binary=bin/ztna-router -var router_version=$(make -s version) examples/packer/azure.pkr.hcl

packer {
  required_plugins {
    ztna = {
      source  = "github.com/ztna/ztna"
      version = ">= 0.0.0"
    }
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.1.0"
    }
  }
}

variable "subscription_id" {
  type = string
}

variable "resource_group" {
  type = string
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "router_binary" {
  type = string
}

variable "router_version" {
  type = string
}

variable "catalog_path" {
  type    = string
  default = "images.json"
}

variable "environment" {
  type    = string
  default = "dev"
}

locals {
  base_image = "Debian:debian-12:12-gen2:latest"
}

source "azure-arm" "router" {
  use_azure_cli_auth                = true
  subscription_id                   = var.subscription_id
  location                          = var.location
  os_type                           = "Linux"
  image_publisher                   = "Debian"
  image_offer                       = "debian-12"
  image_sku                         = "12-gen2"
  vm_size                           = "Standard_F2s_v2"
  managed_image_resource_group_name = var.resource_group
  managed_image_name                = "ztna-router-${var.router_version}-${formatdate("YYYYMMDDhhmmss", timestamp())}"
}

build {
  sources = ["source.azure-arm.router"]

  provisioner "ztna-router" {
    router_binary  = var.router_binary
    router_version = var.router_version
    cloud          = "azure" # first boot reads the key from the VM's custom data
    base_image     = local.base_image
    use_sudo       = true
  }

  # azure-arm's walinuxagent deprovisioning must run last, as Azure images require.
  provisioner "shell" {
    execute_command = "sudo -n sh -c '{{ .Vars }} {{ .Path }}'"
    inline          = ["/usr/sbin/waagent -force -deprovision+user && export HISTSIZE=0 && sync"]
  }

  post-processor "ztna-catalog" {
    catalog_path   = var.catalog_path
    environment    = var.environment
    region         = var.location
    router_version = var.router_version
    base_image     = local.base_image
  }
}
