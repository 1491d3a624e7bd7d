# A hardened ztna router AMI: the current official Debian 12 AMI (ztna-base-image), provisioned
# by ztna-router over SSH, recorded in the image catalog for the ztna_image Terraform data source.
#
#   packer init examples/packer/aws.pkr.hcl
#   packer build -var router_binary=bin/ztna-router -var router_version=$(make -s version) examples/packer/aws.pkr.hcl
#
# Promote it later with promote.pkr.hcl (copy + share into the prod account).

packer {
  required_plugins {
    ztna = {
      source  = "github.com/ztna/ztna"
      version = ">= 0.0.0"
    }
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
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

# The newest official Debian 12 amd64 AMI (owner 136693071363) in the region.
data "ztna-base-image" "debian" {
  cloud  = "aws"
  region = var.region
}

source "amazon-ebs" "router" {
  region        = var.region
  source_ami    = data.ztna-base-image.debian.image_id
  instance_type = "c6i.large"
  ssh_username  = "admin"
  ami_name      = "ztna-router-${var.router_version}-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  imds_support  = "v2.0"
  tags = {
    "ztna-router-version" = var.router_version
    "ztna-base-image"     = data.ztna-base-image.debian.name
  }
}

build {
  sources = ["source.amazon-ebs.router"]

  provisioner "ztna-router" {
    router_binary  = var.router_binary
    router_version = var.router_version
    cloud          = "aws" # first boot reads the registration key from EC2 user data (IMDSv2)
    base_image     = data.ztna-base-image.debian.name
    use_sudo       = true
  }

  post-processor "ztna-catalog" {
    catalog_path   = var.catalog_path
    environment    = var.environment
    router_version = var.router_version
    base_image     = data.ztna-base-image.debian.name
  }
}
