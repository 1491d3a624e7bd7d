# Two edge routers in different clouds host the same services, so that losing one cloud
# does not cut them off.
resource "ztna_router" "aws_eu" {
  name  = "edge-aws-eu-west-1"
  roles = ["customer-a"]
}

resource "ztna_router" "gcp_eu" {
  name  = "edge-gcp-europe-west1"
  roles = ["customer-a"]
  cost  = 10 # prefer the AWS router while both are healthy
}
