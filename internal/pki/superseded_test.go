package pki

import (
	"testing"
	"time"
)

// TestSuperseded: a certificate is superseded by an enrolment more than a second after its
// issuance (certificate times are whole seconds; an enrolment is recorded just before its own
// certificate is issued), never by none.
func TestSuperseded(t *testing.T) {
	issued := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		enrolled time.Time
		want     bool
	}{
		{"no enrolment recorded", time.Time{}, false},
		{"enrolment before issuance", issued.Add(-time.Hour), false},
		{"its own enrolment, recorded within the second", issued.Add(999 * time.Millisecond), false},
		{"exactly a second later", issued.Add(time.Second), false},
		{"an enrolment since", issued.Add(time.Second + time.Microsecond), true},
	} {
		if got := Superseded(issued, tc.enrolled); got != tc.want {
			t.Errorf("%s: Superseded = %v, want %v", tc.name, got, tc.want)
		}
	}
}
