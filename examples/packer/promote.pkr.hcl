# Promotes the image an environment has in the image catalog to the next environment, without a
# build: the null builder produces nothing and ztna-catalog copies the recorded image.
#
#   packer build -var cloud=aws -var region=eu-west-1 -var from=dev -var to=prod \
#     -var 'share_with=["222222222222"]' examples/packer/promote.pkr.hcl

packer {
  required_plugins {
    ztna = {
      source  = "github.com/ztna/ztna"
      version = ">= 0.0.0"
    }
  }
}

variable "catalog_path" {
  type    = string
  default = "images.json"
}

variable "cloud" {
  type = string
}

variable "region" {
  type    = string
  default = ""
}

variable "from" {
  type = string
}

variable "to" {
  type = string
}

variable "share_with" {
  type    = list(string)
  default = []
}

variable "gcp_target_project" {
  type    = string
  default = ""
}

variable "local_target_directory" {
  type    = string
  default = ""
}

source "null" "promote" {
  communicator = "none"
}

build {
  sources = ["source.null.promote"]

  post-processor "ztna-catalog" {
    catalog_path           = var.catalog_path
    cloud                  = var.cloud
    region                 = var.region
    promote_from           = var.from
    environment            = var.to
    aws_share_with         = var.share_with
    gcp_target_project     = var.gcp_target_project
    local_target_directory = var.local_target_directory
  }
}
