output "router_ids" {
  description = "Ids of the two routers (a, b)."
  value       = [module.a.router_id, module.b.router_id]
}

output "host_ids" {
  description = "Resource ids of the two router hosts (a, b)."
  value       = [module.a.host_id, module.b.host_id]
}

output "failure_domains" {
  description = "Failure domains of the two hosts (a, b). The apply fails when they are equal: that pair would not be redundant."
  value       = [module.a.failure_domain, module.b.failure_domain]

  precondition {
    condition     = module.a.failure_domain != module.b.failure_domain
    error_message = "Both router hosts run in ${module.a.failure_domain}: place them in different zones, regions or clouds."
  }
}

output "private_addresses" {
  description = "Private addresses of the two hosts (a, b)."
  value       = [module.a.private_address, module.b.private_address]
}

output "host_names" {
  description = "Names of the two hosts (a, b) and of their routers: <name>-<slot>-<generation>, the generation a hash of what replaces the host."
  value       = [module.a.host_name, module.b.host_name]
}
