# A router is imported by its controller id.
terraform import ztna_router.aws_eu 3f6c1b9e2d7a4f08
