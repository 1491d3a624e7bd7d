package hubnode_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/control"
	"github.com/ztna/ztna/internal/fabric/fabrictest"
)

// TestSupersededRouter: a standalone hub gets each router's latest enrolment in its snapshot
// (over the control channel, as JSON) and refuses router certificates issued before it.
func TestSupersededRouter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enrolled time.Time
		refused  bool
	}{
		{"enrolled again since the certificate", time.Now().Add(time.Minute), true},
		{"the certificate's own enrolment", time.Now().Add(-time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fabrictest.New(t) // issues as of now
			n, addr := serve(t, p, nil)
			snap := snapshot("r1")
			snap.Routers[0].EnrolledAt = tc.enrolled
			wire, err := json.Marshal(snap)
			if err != nil {
				t.Fatal(err)
			}
			var got control.HubSnapshot
			if err := json.Unmarshal(wire, &got); err != nil {
				t.Fatal(err)
			}
			n.Update(got)
			l, err := link(p, addr, api.KindRouter, "r1")
			if (err != nil) != tc.refused {
				t.Fatalf("router link: %v, want refused %v", err, tc.refused)
			}
			if l != nil {
				l.Close()
			}
		})
	}
}
