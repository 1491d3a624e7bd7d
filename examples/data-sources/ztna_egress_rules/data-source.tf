# The outbound rules a firewall team must open for routers with the role "customer-a":
# the controller (80/443/6262 TCP+UDP), the VPC resolver, and every service target.
data "ztna_egress_rules" "customer_a" {
  router_roles = ["customer-a"]
  dns_servers  = ["10.0.0.2"]
}

output "egress_rules" {
  value = [
    for r in data.ztna_egress_rules.customer_a.rules :
    "${r.protocol} ${r.destination}:${r.ports}"
  ]
}
