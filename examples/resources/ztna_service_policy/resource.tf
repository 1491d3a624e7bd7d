resource "ztna_service" "prod_db" {
  name         = "prod-db"
  address      = "prod-db.customerdomain.me"
  port         = 5432
  router_roles = ["customer-a"]
}

# Identities with the role "integrations" may dial prod-db, and nothing else.
resource "ztna_service_policy" "integrations_to_db" {
  name           = "integrations-to-prod-db"
  identity_roles = ["integrations"]
  service_names  = [ztna_service.prod_db.name]
}
