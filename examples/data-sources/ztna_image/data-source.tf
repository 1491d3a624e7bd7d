# The router image the Packer post-processor recorded for production in eu-west-1.
data "ztna_image" "router" {
  catalog     = "${path.root}/images/catalog.json"
  cloud       = "aws"
  region      = "eu-west-1"
  environment = "prod"
}

output "router_ami" {
  value = data.ztna_image.router.image_id
}
