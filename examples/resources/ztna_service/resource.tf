# The customer's database, reachable by name from the integration runtime through any router
# holding the role "customer-a". The routers resolve the name with the customer's DNS.
resource "ztna_service" "prod_db" {
  name         = "prod-db"
  address      = "prod-db.customerdomain.me"
  port         = 5432
  router_roles = ["customer-a"]
}

# An internal API exposed on one port plus a range, over TCP.
resource "ztna_service" "orders_api" {
  name         = "orders-api"
  address      = "orders.internal.customerdomain.me"
  port         = 443
  port_ranges  = ["8000-8010"]
  protocol     = "tcp"
  router_roles = ["customer-a"]
}

output "prod_db_failure_domains" {
  value = ztna_service.prod_db.failure_domains
}
