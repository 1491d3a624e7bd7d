# A service policy is imported by its controller id.
terraform import ztna_service_policy.integrations_to_db 7c2f9a0e5d1b3846
