# A service is imported by its controller id.
terraform import ztna_service.prod_db 5b1d2e7c4a9f0836
