# A registration key is imported by its id. The key itself cannot be read back (the controller
# stores only a hash of it), so `key` is null after import; `used` and `expires_at` are read.
terraform import ztna_registration_key.edge 8d0e4c1a9b2f7e36
