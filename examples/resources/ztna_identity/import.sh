# An identity is imported by its controller id. Its enrolment token cannot be read back, so
# `enrollment_token` is null after import.
terraform import ztna_identity.runtime 0a7e3c9d1f5b2468
