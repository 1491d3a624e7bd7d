package aws

import (
	"net/netip"
	"slices"

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

// egressEntry is one destination of one security group egress permission: the unit EC2
// authorises and revokes.
type egressEntry struct {
	perm types.IpPermission // with exactly one range
	key  string             // canonical form, "tcp 0.0.0.0/0:443" or "all 0.0.0.0/0"
}

// egressEntries flattens permissions (as rendered, or as EC2 describes them) into entries.
func egressEntries(perms []types.IpPermission) []egressEntry {
	var out []egressEntry
	for _, p := range perms {
		proto := awssdk.ToString(p.IpProtocol)
		ports := ""
		if proto == "-1" {
			proto = "all"
		} else if p.FromPort != nil && p.ToPort != nil {
			ports = egress.PortRange{From: uint16(*p.FromPort), To: uint16(*p.ToPort)}.String()
		}
		key := func(cidr string) string {
			if ports == "" {
				return proto + " " + cidr
			}
			return proto + " " + cidr + ":" + ports
		}
		one := types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort}
		for _, r := range p.IpRanges {
			e := one
			e.IpRanges = []types.IpRange{r}
			out = append(out, egressEntry{e, key(awssdk.ToString(r.CidrIp))})
		}
		for _, r := range p.Ipv6Ranges {
			e := one
			e.Ipv6Ranges = []types.Ipv6Range{r}
			out = append(out, egressEntry{e, key(awssdk.ToString(r.CidrIpv6))})
		}
		// Prefix lists and group references are destinations too: anything beyond the
		// allowlist widens the host's egress.
		for _, pl := range p.PrefixListIds {
			e := one
			e.PrefixListIds = []types.PrefixListId{pl}
			out = append(out, egressEntry{e, key("prefix-list " + awssdk.ToString(pl.PrefixListId))})
		}
		for _, g := range p.UserIdGroupPairs {
			e := one
			e.UserIdGroupPairs = []types.UserIdGroupPair{g}
			out = append(out, egressEntry{e, key("security-group " + awssdk.ToString(g.GroupId))})
		}
	}
	return out
}

func entryKeys(es []egressEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.key
	}
	return out
}

// egressChanges compares a group's egress permissions with the allowlist: the entries to
// authorise and the ones to revoke.
func egressChanges(have []types.IpPermission, rules []egress.Rule) (add, remove []types.IpPermission) {
	want := egressEntries(egressPermissions(rules))
	live := egressEntries(have)
	in := func(es []egressEntry, key string) bool {
		return slices.ContainsFunc(es, func(e egressEntry) bool { return e.key == key })
	}
	for _, w := range want {
		if !in(live, w.key) {
			add = append(add, w.perm)
		}
	}
	for _, l := range live {
		if !in(want, l.key) {
			remove = append(remove, l.perm)
		}
	}
	return add, remove
}
