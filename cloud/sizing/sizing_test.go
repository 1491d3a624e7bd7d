package sizing

import (
	"strings"
	"testing"
)

func TestInstanceTypeFor(t *testing.T) {
	tests := []struct {
		cloud, tier, want string
		vcpu              int
	}{
		{"aws", "low-med", "c6i.large", 2},
		{"aws", "med", "c6i.xlarge", 4},
		{"aws", "high", "c6i.2xlarge", 8},
		{"gcp", "low-med", "e2-standard-2", 2},
		{"gcp", "med", "e2-standard-4", 4},
		{"gcp", "high", "e2-standard-8", 8},
		{"azure", "low-med", "Standard_F2s_v2", 2},
		{"azure", "med", "Standard_F4s_v2", 4},
		{"azure", "high", "Standard_F8s_v2", 8},
	}
	for _, tt := range tests {
		t.Run(tt.cloud+"/"+tt.tier, func(t *testing.T) {
			got, err := InstanceTypeFor(tt.cloud, tt.tier)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want || got.VCPU != tt.vcpu {
				t.Fatalf("got %+v, want %s with %d vCPU", got, tt.want, tt.vcpu)
			}
		})
	}
}

// Every instance type must meet its tier's minimum, or the tier would promise capacity it lacks.
func TestTableMeetsTierMinimums(t *testing.T) {
	for _, s := range Table() {
		if len(s.InstanceTypes) != len(Clouds()) {
			t.Errorf("tier %s has %d clouds, want %d", s.Tier, len(s.InstanceTypes), len(Clouds()))
		}
		for c, it := range s.InstanceTypes {
			if it.VCPU < s.VCPU || it.MemoryMiB < s.MemoryMiB {
				t.Errorf("%s %s: %+v is below the tier minimum %d vCPU / %d MiB", c, s.Tier, it, s.VCPU, s.MemoryMiB)
			}
		}
		if s.DiskGiB < 10 {
			t.Errorf("tier %s disk %d GiB is below the Debian image minimum", s.Tier, s.DiskGiB)
		}
	}
}

func TestErrorsListValidChoices(t *testing.T) {
	tests := []struct {
		name, cloud, tier string
		want              []string
	}{
		{"bad tier", "aws", "huge", []string{`"huge"`, `"low-med", "med", "high"`}},
		{"bad cloud", "oracle", "med", []string{`"oracle"`, `"aws", "azure", "gcp"`}},
		{"tier case matters", "aws", "Med", []string{`"Med"`, `"low-med"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InstanceTypeFor(tt.cloud, tt.tier)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name, cloud, tier, explicit, want, wantErr string
	}{
		{"tier", "gcp", "high", "", "e2-standard-8", ""},
		{"explicit", "aws", "", "m7g.large", "m7g.large", ""},
		{"default tier", "azure", "", "", "Standard_F2s_v2", ""},
		{"both", "aws", "med", "c6i.large", "", "set only one"},
		{"bad tier", "aws", "xl", "", "", "use one of"},
		{"bad cloud", "local", "med", "", "", "unknown cloud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.cloud, tt.tier, tt.explicit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestTableIsACopy(t *testing.T) {
	rows := Table()
	rows[0].InstanceTypes[AWS] = InstanceType{Name: "changed"}
	if it, _ := InstanceTypeFor("aws", "low-med"); it.Name != "c6i.large" {
		t.Fatalf("mutating Table() changed the table: %q", it.Name)
	}
}
