package testenv

import "testing"

// An integration test runs without -short and is skipped with it (run this package both ways).
func TestIntegrationSkipsOnlyUnderShort(t *testing.T) {
	ran := false
	t.Run("integration", func(t *testing.T) {
		Integration(t, "nothing")
		ran = true
	})
	if ran == testing.Short() {
		t.Fatalf("with -short=%v the integration test ran: %v", testing.Short(), ran)
	}
}

func TestMainRunsOnlyWithoutShort(t *testing.T) {
	ran := false
	code := Main("nothing", func() int { ran = true; return 7 })
	if testing.Short() && (ran || code != 0) || !testing.Short() && (!ran || code != 7) {
		t.Fatalf("with -short=%v: run called %v, code %d", testing.Short(), ran, code)
	}
}
