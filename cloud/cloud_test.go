package cloud

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ztna/ztna/cloud/egress"
	"github.com/ztna/ztna/cloud/sizing"
)

const key = "ztna-key-v1.c2VjcmV0LXNlY3JldA"

func spec() HostSpec {
	return HostSpec{Name: "edge-a", RegistrationKey: key, Egress: []egress.Rule{{Destination: "10.0.0.1/32", Protocol: egress.TCP, Ports: egress.Port(443)}}}
}

// The key never shows in logs or formatted output, however the spec is printed.
func TestSpecRedactsKey(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("create", "spec", spec())
	slog.New(slog.NewTextHandler(&buf, nil)).Info("create", "spec", spec())
	fmt.Fprintf(&buf, "%v %+v %s %#v", spec(), spec(), spec(), spec())
	if strings.Contains(buf.String(), key) || strings.Contains(buf.String(), "c2VjcmV0") {
		t.Fatalf("key leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "(sensitive)") || !strings.Contains(buf.String(), "edge-a") {
		t.Fatalf("output lacks the redacted spec: %s", buf.String())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*HostSpec)
		want string
	}{
		{"ok", func(*HostSpec) {}, ""},
		{"upper case name", func(s *HostSpec) { s.Name = "Edge" }, "lower-case"},
		{"long name", func(s *HostSpec) { s.Name = strings.Repeat("a", 41) }, "1-40"},
		{"trailing dash", func(s *HostSpec) { s.Name = "edge-" }, "not ending with '-'"},
		{"no key", func(s *HostSpec) { s.RegistrationKey = " " }, "registration key is empty"},
		{"multi-line key", func(s *HostSpec) { s.RegistrationKey = key + "\nx" }, "one line"},
		{"no egress", func(s *HostSpec) { s.Egress = nil }, "egress allowlist is empty"},
		{"key in tag value", func(s *HostSpec) { s.Tags = map[string]string{"k": "x" + key} }, "remove it from the tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec()
			tt.edit(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error repeats the key: %v", err)
			}
		})
	}
}

func TestSize(t *testing.T) {
	s := spec()
	if it, disk, err := s.Size(sizing.AWS); err != nil || it != "c6i.large" || disk != 20 {
		t.Fatalf("default = %s, %d, %v", it, disk, err)
	}
	s.InstanceType = "m7i.large"
	if it, _, err := s.Size(sizing.GCP); err != nil || it != "m7i.large" {
		t.Fatalf("explicit = %s, %v", it, err)
	}
	s.Tier = "high"
	if _, _, err := s.Size(sizing.Azure); err == nil {
		t.Fatal("tier and type accepted together")
	}
}

func TestAllTags(t *testing.T) {
	s := spec()
	s.Tags = map[string]string{"team": "platform", TagManagedBy: "someone"}
	got := s.AllTags()
	if got["team"] != "platform" || got[TagManagedBy] != ManagedBy || got[TagRouterHost] != "edge-a" || len(s.Tags) != 2 || s.Tags[TagManagedBy] != "someone" {
		t.Fatalf("AllTags = %v (spec tags %v)", got, s.Tags)
	}
}

func TestFailureDomainFormat(t *testing.T) {
	for _, tc := range []struct {
		d    FailureDomain
		want string
	}{
		{FailureDomain{Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1b"}, "aws/eu-west-1/eu-west-1b"},
		{FailureDomain{Cloud: "gcp", Region: GCPZoneRegion("europe-west1-b"), Zone: "europe-west1-b"}, "gcp/europe-west1/europe-west1-b"},
		{FailureDomain{Cloud: "gcp", Region: GCPZoneRegion("us-east4-c"), Zone: "us-east4-c"}, "gcp/us-east4/us-east4-c"},
		{FailureDomain{Cloud: "azure", Region: "westeurope", Zone: "2"}, "azure/westeurope/2"},
		{FailureDomain{Cloud: "azure", Region: "westeurope"}, "azure/westeurope/"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestEgressDiff(t *testing.T) {
	for _, tc := range []struct {
		name       string
		want, have []string
		drift      []string
	}{
		{"equal, any order", []string{"a", "b"}, []string{"b", "a"}, nil},
		{"missing", []string{"a", "b"}, []string{"a"}, []string{"fw lacks the egress allow b"}},
		{"extra", []string{"a"}, []string{"a", "all 0.0.0.0/0"}, []string{"fw allows egress all 0.0.0.0/0, which is not in the allowlist"}},
		{"duplicate counts", []string{"a"}, []string{"a", "a"}, []string{"fw allows egress a, which is not in the allowlist"}},
		{"both", []string{"a"}, []string{"b"}, []string{"fw lacks the egress allow a", "fw allows egress b, which is not in the allowlist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EgressDiff("fw", tc.want, tc.have); fmt.Sprint(got) != fmt.Sprint(tc.drift) {
				t.Fatalf("EgressDiff = %q, want %q", got, tc.drift)
			}
		})
	}
}
