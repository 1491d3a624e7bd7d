package gcp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ztna/ztna/cloud"
	"google.golang.org/api/googleapi"
)

// apiError turns a Compute Engine HTTP error into a cloud.APIError that says what to change.
func (d *Driver) apiError(op string, err error) error {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return fmt.Errorf("gcp %s: %w", op, err)
	}
	code := http.StatusText(ge.Code)
	if len(ge.Errors) > 0 && ge.Errors[0].Reason != "" {
		code = ge.Errors[0].Reason
	}
	msg := ge.Message
	if msg == "" && len(ge.Errors) > 0 {
		msg = ge.Errors[0].Message
	}
	return d.apiErrorFrom(op, code, msg, err)
}

// apiErrorFrom builds the error from a reason/code and message, from either an HTTP error or
// a failed operation.
func (d *Driver) apiErrorFrom(op, code, msg string, err error) error {
	return &cloud.APIError{Cloud: "gcp", Operation: op, Code: code, Message: msg, Advice: d.advice(op, code, msg), Err: err}
}

func (d *Driver) advice(op, code, msg string) string {
	lc := strings.ToLower(code)
	switch {
	case lc == "forbidden" || lc == "permission_denied" || lc == "insufficientpermissions" || strings.Contains(msg, "Required '"):
		return fmt.Sprintf("the credentials lack a Compute Engine permission for %s in project %s: grant roles/compute.instanceAdmin.v1 and roles/compute.securityAdmin (or the permission named above) to the caller", op, d.opts.Project)
	case lc == "quota_exceeded" || lc == "quotaexceeded" || strings.Contains(lc, "quota"):
		return fmt.Sprintf("a Compute Engine quota of project %s is exhausted: request more in IAM & Admin > Quotas, delete unused resources, or choose a smaller size tier", d.opts.Project)
	case lc == "zone_resource_pool_exhausted" || lc == "zone_resource_pool_exhausted_with_details":
		return "the zone has no capacity for this machine type now: choose another zone or size tier"
	case strings.Contains(msg, "subnetwork") || strings.Contains(msg, "networks/"):
		return fmt.Sprintf("check network and subnetwork: they must exist in project %s and region %s", d.opts.Project, cloud.GCPZoneRegion(d.opts.Zone))
	case strings.Contains(msg, "machineTypes"):
		return fmt.Sprintf("check instance_type: it must be offered in zone %s", d.opts.Zone)
	case strings.Contains(msg, "images/"):
		return fmt.Sprintf("check the image: it must exist and be usable by project %s (promote it with the ztna-catalog post-processor)", d.opts.Project)
	case lc == "ratelimitexceeded" || lc == "userratelimitexceeded":
		return "the Compute Engine API is throttling requests: retry later"
	}
	return ""
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

// isPreconditionFailed is Compute Engine's answer to a write with a stale fingerprint (412
// conditionNotMet).
func isPreconditionFailed(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed
}
