# A registration key is imported by its id. The controller returns the key itself only once,
# when it creates it, and keeps only a hash of it: after import `key` is null; `router_id`,
# `ttl`, `used`, `state` and `expires_at` are read back. `keepers` are unknown to the
# controller: the first apply after the import records the configured ones in place without
# replacing the key. To hand a router a key again, change `keepers` (or
# use `terraform apply -replace`) to mint a new one; the ztna_registration_key ephemeral
# resource mints one on every run without storing it.
terraform import ztna_registration_key.edge 8d0e4c1a9b2f7e36
