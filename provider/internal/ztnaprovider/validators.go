package ztnaprovider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/ztna/ztna/internal/api"
)

// The validators below adapt internal/api's validation functions, so a configuration fails at
// plan time with exactly the rule the controller would apply at create time.

type stringCheck struct {
	what  string
	check func(string) error
}

func (v stringCheck) Description(context.Context) string { return "must be " + v.what }

func (v stringCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+attributeName(req.Path), invalidDetail(req.Path, v.what, err))
	}
}

type int64Check struct {
	what  string
	check func(int) error
}

func (v int64Check) Description(context.Context) string { return "must be " + v.what }

func (v int64Check) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v int64Check) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(int(req.ConfigValue.ValueInt64())); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+attributeName(req.Path), invalidDetail(req.Path, v.what, err))
	}
}

// attributeName is the top-level attribute a path points into ("router_roles" for an element
// of that set), which is the name a user looks for in the configuration.
func attributeName(p path.Path) string {
	if steps := p.Steps(); len(steps) > 0 {
		if a, ok := steps[0].(path.PathStepAttributeName); ok {
			return string(a)
		}
	}
	return p.String()
}

func invalidDetail(p path.Path, what string, err error) string {
	name := attributeName(p)
	if len(p.Steps()) > 1 {
		return fmt.Sprintf("Each element of %s must be %s: %s", name, what, err)
	}
	return fmt.Sprintf("%s must be %s: %s", name, what, err)
}

var (
	validName      = stringCheck{"a name (letters, digits, '.', '_', '-')", api.ValidateName}
	validRole      = stringCheck{"a role (lower-case letters, digits, '.', '_', '-')", api.ValidateRole}
	validAddress   = stringCheck{"an IP address or a fully qualified domain name", api.ValidateAddress}
	validPortRange = stringCheck{`a port range "from-to"`, api.ValidatePortRange}
	validProtocol  = stringCheck{`"tcp"`, api.ValidateProtocol}
	validTTL       = stringCheck{`a duration in whole seconds such as "30m" or "24h"`, checkTTL}
	validPort      = int64Check{"a port between 1 and 65535", api.ValidatePort}
	validCost      = int64Check{"a cost between 0 and 1000000", api.ValidateCost}
)

func checkTTL(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use units s, m, h): %w", s, err)
	}
	if d%time.Second != 0 {
		return fmt.Errorf("%q has a fraction of a second", s)
	}
	if d <= 0 {
		return errors.New("must be positive; leave it unset for the controller's default")
	}
	return api.ValidateTTLSeconds(int(d / time.Second))
}
