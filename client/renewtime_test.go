package client

import (
	"testing"
	"time"
)

func TestRenewalTimeIsAboutTwoThirdsWithJitter(t *testing.T) {
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		r    float64
		want time.Duration // after from, for a 100-minute span
	}{
		{"earliest", 0, 61*time.Minute + 40*time.Second},
		{"middle", 0.5, 66*time.Minute + 40*time.Second},
		{"latest", 0.999999, 71*time.Minute + 40*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renewalTime(from, from.Add(100*time.Minute), tc.r).Sub(from)
			if d := got - tc.want; d < -time.Second || d > time.Second {
				t.Fatalf("renewal after %v, want %v", got, tc.want)
			}
		})
	}
}
