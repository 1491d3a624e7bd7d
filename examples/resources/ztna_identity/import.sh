# An identity is imported by its controller id; name, roles and token_ttl are read back. The
# controller returns the enrolment token only when it mints it and keeps only a hash of it:
# after import `enrollment_token` is null. `token_keepers` are unknown to the controller: the
# first apply after the import records the configured ones in place without minting a token.
# An identity that still has to enrol needs a new token: change `token_keepers` to reissue one
# under the same id, or use the `ztna_identity_enrollment_token` ephemeral resource.
terraform import ztna_identity.runtime 0a7e3c9d1f5b2468
