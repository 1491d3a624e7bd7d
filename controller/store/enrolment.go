package store

import (
	"context"
	"time"
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
