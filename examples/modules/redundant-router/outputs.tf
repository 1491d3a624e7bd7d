output "router_ids" {
  description = "Ids of the two routers (a, b)."
  value       = [for k in ["a", "b"] : ztna_router.this[k].id]
}

output "host_ids" {
  description = "Resource ids of the two router hosts (a, b)."
  value       = [ztna_router_host.a.id, ztna_router_host.b.id]
}

output "failure_domains" {
  description = "Failure domains of the two hosts (a, b). The apply fails when they are equal: that pair would not be redundant."
  value       = [ztna_router_host.a.failure_domain, ztna_router_host.b.failure_domain]

  precondition {
    condition     = ztna_router_host.a.failure_domain != ztna_router_host.b.failure_domain
    error_message = "Both router hosts run in ${ztna_router_host.a.failure_domain}: place them in different zones, regions or clouds."
  }
}

output "private_addresses" {
  description = "Private addresses of the two hosts (a, b)."
  value       = [ztna_router_host.a.private_address, ztna_router_host.b.private_address]
}

output "host_names" {
  description = "Names of the two hosts (a, b) and of their routers: <name>-<slot>-<generation>, the generation a hash of what replaces the host."
  value       = [ztna_router_host.a.name, ztna_router_host.b.name]
}
