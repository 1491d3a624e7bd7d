data "ztna_service" "prod_db" {
  name = "prod-db"
}

# Which routers host the service, and can they reach it?
output "prod_db_health" {
  value = {
    for r in data.ztna_service.prod_db.routers : r.router_name => r.reachable
  }
}
