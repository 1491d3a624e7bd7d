output "router_id" {
  description = "The slot's router."
  value       = ztna_router.this.id
}

output "host_id" {
  description = "The slot's host."
  value       = ztna_router_host.this.id
}

output "host_name" {
  description = "The host's (and its router's) name: <pair name>-<slot>-<generation>."
  value       = ztna_router_host.this.name
}

output "failure_domain" {
  description = "The host's failure domain."
  value       = ztna_router_host.this.failure_domain
}

output "private_address" {
  description = "The host's private address."
  value       = ztna_router_host.this.private_address
}
