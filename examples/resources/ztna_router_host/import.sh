# A router host is imported by its resource id: <platform>:<instance id>. The next apply records
# the configuration (router_id, key, size, ...) without replacing the host.
terraform import ztna_router_host.edge aws:eu-west-1:i-0123456789abcdef0
terraform import ztna_router_host.lab local:/var/lib/ztna/router-hosts/lab
terraform import ztna_router_host.gcp gcp:projects/acme-net/zones/europe-west1-b/instances/edge-b
terraform import ztna_router_host.azure azure:westeurope:/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/routers/providers/Microsoft.Compute/virtualMachines/edge-c
