resource "ztna_router" "edge" {
  name  = "edge-aws-eu-west-1a"
  roles = ["customer-a"]
}

# A fresh one-time key on every run that never lands in state or a plan file; the host
# reads it once, at first boot, from its user data.
ephemeral "ztna_registration_key" "edge" {
  router_id = ztna_router.edge.id
  ttl       = "30m"
  # Replacing the host (a new image, drift) enrols the already enrolled router on a new VM:
  # the controller refuses that to a key created without this.
  allow_reenrollment = true
}

data "ztna_image" "router" {
  catalog     = "${path.root}/images/catalog.json" # written by the ztna-catalog Packer post-processor
  cloud       = "aws"
  region      = "eu-west-1"
  environment = "prod"
}

resource "ztna_service" "db" {
  name         = "prod-db"
  address      = "prod-db.customerdomain.me"
  port         = 5432
  router_roles = ["customer-a"]
}

# An EC2 instance (c6i.large for "low-med") with a security group that has no ingress rule and
# allows outbound only to the controller, the DNS servers, prod-db:5432 and the NTP server.
resource "ztna_router_host" "edge" {
  name                        = "edge-a"
  router_id                   = ztna_router.edge.id
  registration_key_wo         = ephemeral.ztna_registration_key.edge.key
  registration_key_wo_version = 1
  size                        = "low-med"
  image                       = data.ztna_image.router.image_id
  dns_servers                 = ["10.0.0.2"]

  egress {
    destination = "169.254.169.123" # Amazon Time Sync
    protocol    = "udp"
    ports       = "123"
  }

  aws {
    region    = "eu-west-1"
    subnet_id = "subnet-0a1b2c3d4e5f67890" # private subnet in eu-west-1a, with a NAT gateway
  }

  tags = {
    team = "platform"
  }

  timeouts {
    create = "20m"
  }

  # The allowlist follows the services in place; depending on them lets a first apply create
  # the host with their targets already allowed.
  depends_on = [ztna_service.db]
}

# The same router software as a local process in its own network namespace (root): no inbound
# connection at all, outbound only to the allowlist. Good for trying ztna on one machine.
resource "ztna_router" "lab" {
  name  = "edge-lab"
  roles = ["lab"]
}

resource "ztna_registration_key" "lab" {
  router_id          = ztna_router.lab.id
  allow_reenrollment = true # a replaced host enrols the same router again
}

resource "ztna_router_host" "lab" {
  name             = "lab"
  router_id        = ztna_router.lab.id
  registration_key = ztna_registration_key.lab.key

  local {
    isolation = "netns"
  }
}

output "edge_failure_domain" {
  value = ztna_router_host.edge.failure_domain
}
