package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ztna/ztna/internal/api"
)

// LatestEnrolments returns, for every router or identity (kind) enrolled at least once, when
// its latest enrolment consumed its key. Certificates issued before that are superseded
// (pki.Superseded): refused for renewal and, for routers, on the control channel and the
// fabric.
func LatestEnrolments(ctx context.Context, st Store, kind string) (map[string]time.Time, error) {
	keys, err := st.ListKeys(ctx, kind)
	if err != nil {
		return nil, err
	}
	latest := map[string]time.Time{}
	for _, k := range keys {
		if k.UsedAt != nil && k.UsedAt.After(latest[k.SubjectID]) {
			latest[k.SubjectID] = *k.UsedAt
		}
	}
	return latest, nil
}

// AdmitEnrolment decides whether router key k may enrol r, as r is inside ConsumeKey's
// transaction: a router never enrolled is always admitted; an enrolled one only with a key
// created with AllowReenrollment, or once after an operator reset it
// (r.ReenrollmentAllowed). A stray or leaked key for a running router would otherwise
// supersede its certificate and cut it off.
func AdmitEnrolment(r *api.Router, k *Key) error {
	if r.Status == api.RouterUnenrolled || k.AllowReenrollment || r.ReenrollmentAllowed {
		return nil
	}
	return fmt.Errorf("router %s: %w", r.ID, ErrRouterEnrolled)
}

// MarkEnrolled records in r an enrolment that ConsumeKey admitted: the router leaves
// "unenrolled", and an operator's reset is spent.
func MarkEnrolled(r *api.Router) {
	if r.Status == api.RouterUnenrolled {
		r.Status = api.RouterOffline
	}
	r.ReenrollmentAllowed = false
}
