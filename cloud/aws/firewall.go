package aws

import (
	"net/netip"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/ztna/ztna/cloud/egress"
)

// egressPermissions renders the allowlist as security group egress permissions: one
// permission per protocol and port range, listing its destinations. Name destinations become
// 0.0.0.0/0 on their ports (see egress.Rule.FirewallCIDR) with the name as the description, and
// duplicates that this creates are dropped because EC2 rejects duplicate rules.
func egressPermissions(rules []egress.Rule) []types.IpPermission {
	type key struct {
		proto    egress.Protocol
		from, to uint16
	}
	var order []key
	perms := map[key]*types.IpPermission{}
	seen := map[key]map[string]bool{}
	for _, r := range rules {
		k := key{r.Protocol, r.Ports.From, r.Ports.To}
		p, ok := perms[k]
		if !ok {
			p = &types.IpPermission{
				IpProtocol: awssdk.String(string(r.Protocol)),
				FromPort:   awssdk.Int32(int32(r.Ports.From)),
				ToPort:     awssdk.Int32(int32(r.Ports.To)),
			}
			perms[k], seen[k] = p, map[string]bool{}
			order = append(order, k)
		}
		cidr := r.FirewallCIDR()
		if seen[k][cidr] {
			continue
		}
		seen[k][cidr] = true
		desc := awssdk.String("ztna egress " + r.Destination)
		if netip.MustParsePrefix(cidr).Addr().Is4() {
			p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: awssdk.String(cidr), Description: desc})
		} else {
			p.Ipv6Ranges = append(p.Ipv6Ranges, types.Ipv6Range{CidrIpv6: awssdk.String(cidr), Description: desc})
		}
	}
	out := make([]types.IpPermission, len(order))
	for i, k := range order {
		out[i] = *perms[k]
	}
	return out
}
