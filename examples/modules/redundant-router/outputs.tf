output "router_ids" {
  description = "Ids of the two routers (a, b)."
  value       = [for k in ["a", "b"] : ztna_router.this[k].id]
}

output "host_ids" {
  description = "Resource ids of the two router hosts (a, b)."
  value       = [for k in ["a", "b"] : ztna_router_host.this[k].id]
}

output "failure_domains" {
  description = "Failure domains of the two hosts (a, b). The apply fails when they are equal: that pair would not be redundant."
  value       = [for k in ["a", "b"] : ztna_router_host.this[k].failure_domain]

  precondition {
    condition     = ztna_router_host.this["a"].failure_domain != ztna_router_host.this["b"].failure_domain
    error_message = "Both router hosts run in ${ztna_router_host.this["a"].failure_domain}: place them in different zones, regions or clouds."
  }
}

output "private_addresses" {
  description = "Private addresses of the two hosts (a, b)."
  value       = [for k in ["a", "b"] : ztna_router_host.this[k].private_address]
}
