data "ztna_router" "edge" {
  name = "edge-aws-eu-west-1"
}

output "edge_status" {
  value = data.ztna_router.edge.status
}
