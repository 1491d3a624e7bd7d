# An identity is imported by its controller id. The controller returns the enrolment token only
# once, when it creates the identity, and keeps only a hash of it: after import
# `enrollment_token` is null (and `token_ttl` is unknown, so a configuration that sets it plans
# a replacement unless it also has `lifecycle { ignore_changes = [token_ttl] }`). An identity
# that still has to enrol needs a new token: change `token_keepers` to reissue one (same id).
terraform import ztna_identity.runtime 0a7e3c9d1f5b2468
