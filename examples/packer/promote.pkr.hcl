# Promotes the image an environment has in the image catalog to the next environment, without a
# build: the null builder produces nothing and ztna-catalog copies the recorded image.
#
# AWS, dev's AMI into the prod account: the dev account shares the AMI and its EBS snapshots with
# prod, then prod's credentials copy it, so prod owns its AMI and snapshots. Prod's credentials are
# a profile (aws_profile) or a role in prod that dev's credentials may assume (aws_assume_role_arn);
# dev's are aws_source_profile (default: the standard chain).
#
#   packer build -var cloud=aws -var region=eu-west-1 -var from=dev -var to=prod \
#     -var aws_source_profile=dev -var aws_profile=prod examples/packer/promote.pkr.hcl
#   packer build -var cloud=aws -var region=eu-west-1 -var from=dev -var to=prod \
#     -var aws_assume_role_arn=arn:aws:iam::222222222222:role/ztna-promoter examples/packer/promote.pkr.hcl
#
# GCP: the principal needs roles/compute.imageUser on the source image's project and
# roles/compute.storageAdmin (compute.images.create) in gcp_target_project.
#
#   packer build -var cloud=gcp -var from=dev -var to=prod -var gcp_target_project=my-prod \
#     examples/packer/promote.pkr.hcl

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

variable "aws_profile" {
  type    = string
  default = ""
}

variable "aws_assume_role_arn" {
  type    = string
  default = ""
}

variable "aws_source_profile" {
  type    = string
  default = ""
}

variable "aws_endpoint" {
  type    = string
  default = ""
}

variable "aws_sts_endpoint" {
  type    = string
  default = ""
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
    aws_profile            = var.aws_profile
    aws_assume_role_arn    = var.aws_assume_role_arn
    aws_source_profile     = var.aws_source_profile
    aws_endpoint           = var.aws_endpoint
    aws_sts_endpoint       = var.aws_sts_endpoint
    gcp_target_project     = var.gcp_target_project
    local_target_directory = var.local_target_directory
  }
}
