# A hardened ztna router image on Google Compute Engine from the current debian-12 family image,
# recorded in the image catalog (GCP images are global: no region).
#
#   packer build -var project=my-build-project -var router_binary=bin/ztna-router \
#     -var router_version=$(make -s version) examples/packer/gcp.pkr.hcl

packer {
  required_plugins {
    ztna = {
      source  = "github.com/ztna/ztna"
      version = ">= 0.0.0"
    }
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = ">= 1.1.0"
    }
  }
}

variable "project" {
  type = string
}

variable "zone" {
  type    = string
  default = "europe-west1-b"
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

data "ztna-base-image" "debian" {
  cloud       = "gcp"
  gcp_project = var.project
}

source "googlecompute" "router" {
  project_id              = var.project
  zone                    = var.zone
  source_image            = data.ztna-base-image.debian.name
  source_image_project_id = ["debian-cloud"]
  machine_type            = "e2-standard-2"
  ssh_username            = "packer"
  image_name              = "ztna-router-${replace(var.router_version, ".", "-")}-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  image_family            = "ztna-router"
  image_labels = {
    ztna-router-version = replace(var.router_version, ".", "-")
  }
}

build {
  sources = ["source.googlecompute.router"]

  provisioner "ztna-router" {
    router_binary  = var.router_binary
    router_version = var.router_version
    cloud          = "gcp" # first boot reads the key from the ztna-registration-key metadata item
    use_sudo       = true
  }

  post-processor "ztna-catalog" {
    catalog_path   = var.catalog_path
    environment    = var.environment
    router_version = var.router_version
    base_image     = data.ztna-base-image.debian.name
  }
}
