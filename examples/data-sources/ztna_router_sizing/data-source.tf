data "ztna_router_sizing" "med" {
  tier  = "med"
  cloud = "aws"
}

output "aws_instance_type" {
  value = data.ztna_router_sizing.med.instance_type # "c6i.xlarge"
}

output "azure_vm_size" {
  value = data.ztna_router_sizing.med.instance_types["azure"].name # "Standard_F4s_v2"
}
