package ztnaprovider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/ztna/ztna/internal/apiclient"
)

// clientData is what the provider hands to every resource and data source in Configure.
// client is nil when the provider block and the environment name no controller, so that
// data sources that need none (sizing, image) still work.
type clientData struct {
	client  *apiclient.Client
	address string
	planned plannedObjects
}

// configured extracts clientData from a Configure request. Terraform calls Configure once
// before the provider is configured, with nil provider data: that is not an error.
func configured(providerData any, diags *diag.Diagnostics) *clientData {
	if providerData == nil {
		return nil
	}
	cd, ok := providerData.(*clientData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *clientData, got %T: this is a bug in the ztna provider", providerData))
		return nil
	}
	return cd
}

// requireClient returns the API client, or an error diagnostic explaining how to configure one.
func (cd *clientData) requireClient(diags *diag.Diagnostics) *apiclient.Client {
	if cd == nil || cd.client == nil {
		diags.AddError("ztna provider is not configured",
			"This operation needs the ztna controller: set address, token and ca_fingerprint in the provider block, "+
				"or the environment variables ZTNA_ADDR, ZTNA_TOKEN and ZTNA_CA_FINGERPRINT.")
		return nil
	}
	return cd.client
}

var fieldIndex = regexp.MustCompile(`\[\d+\]$`)

// addAPIError turns a management API error into diagnostics. Validation problems name the bad
// attribute (fields maps API field names that differ from attribute names, e.g. ttl_seconds →
// ttl); a duplicate name points at "name"; everything else is a general error.
func addAPIError(diags *diag.Diagnostics, action string, err error, fields map[string]string) {
	var e *apiclient.Error
	switch {
	case apiclient.IsConflict(err):
		diags.AddAttributeError(path.Root("name"), "Name already in use",
			fmt.Sprintf("Cannot %s: %s. Choose another name, or import the existing object with `terraform import`.", action, problemText(err)))
		return
	case asAPIError(err, &e) && len(e.Problem.Errors) > 0:
		for _, fe := range e.Problem.Errors {
			field := fe.Field
			root := fieldIndex.ReplaceAllString(field, "")
			if attr, ok := fields[root]; ok {
				field, root = strings.Replace(field, root, attr, 1), attr
			}
			diags.AddAttributeError(path.Root(root), "Invalid "+root, fmt.Sprintf("Cannot %s: %s: %s", action, field, fe.Detail))
		}
		return
	}
	diags.AddError("Cannot "+action, describeClientError(err))
}

func asAPIError(err error, target **apiclient.Error) bool {
	return errors.As(err, target)
}

func problemText(err error) string {
	var e *apiclient.Error
	if asAPIError(err, &e) {
		return e.Problem.Error()
	}
	return err.Error()
}

// describeClientError explains the errors every call can hit in terms of the provider block.
func describeClientError(err error) string {
	switch {
	case apiclient.IsPinMismatch(err):
		return "The controller's certificate does not match ca_fingerprint (ZTNA_CA_FINGERPRINT): " + err.Error()
	case apiclient.IsUnauthorized(err):
		return "The controller rejected the token (token / ZTNA_TOKEN): " + problemText(err) +
			". Use a valid management API token of this controller."
	}
	var e *apiclient.Error
	if asAPIError(err, &e) {
		return e.Error()
	}
	return "The controller could not be reached (address / ZTNA_ADDR): " + err.Error()
}

// stringSet converts a Go slice into a Terraform set of strings (sorted for stable output).
func stringSet(values []string) types.Set {
	elems := make([]attr.Value, 0, len(values))
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for _, v := range sorted {
		elems = append(elems, types.StringValue(v))
	}
	s, _ := types.SetValue(types.StringType, elems)
	return s
}

// setStrings converts a known Terraform set or list of strings into a Go slice.
func setStrings(ctx context.Context, s interface {
	ElementsAs(context.Context, any, bool) diag.Diagnostics
	IsNull() bool
}, diags *diag.Diagnostics) []string {
	out := []string{}
	if s.IsNull() {
		return out
	}
	diags.Append(s.ElementsAs(ctx, &out, false)...)
	return out
}

// knownStrings is the known elements of a set or list of strings that may hold unknown ones
// at plan time (an element computed by another resource); unknown and null ones are left out.
func knownStrings(s interface{ Elements() []attr.Value }) []string {
	var out []string
	for _, e := range s.Elements() {
		if v, ok := e.(types.String); ok && !v.IsUnknown() && !v.IsNull() {
			out = append(out, v.ValueString())
		}
	}
	return out
}

// timeString renders an API time for state; the zero time and nil are null.
func timeString(t *time.Time) types.String {
	if t == nil || t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// formatTTL renders seconds as the shortest Go duration ("1h", "1h30m", "90s" → "1m30s"), the
// form the ttl attributes are written in, so an imported ttl matches a typical configuration.
func formatTTL(seconds int) string {
	s := (time.Duration(seconds) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ttlSeconds parses a validated ttl attribute; null means the controller's default (0).
func ttlSeconds(v types.String) int {
	if v.IsNull() || v.IsUnknown() {
		return 0
	}
	d, _ := time.ParseDuration(v.ValueString())
	return int(d / time.Second)
}
