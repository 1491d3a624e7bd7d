package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestNew(t *testing.T) {
	tests := []struct {
		format, level string
		wantErr       string
	}{
		{"text", "info", ""},
		{"JSON", "debug", ""},
		{"xml", "info", `log format "xml": use text or json`},
		{"text", "loud", `log level "loud": use debug, info, warn or error`},
	}
	for _, tt := range tests {
		_, err := New(&bytes.Buffer{}, tt.format, tt.level)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
			t.Errorf("New(%q, %q) error = %v, want %q", tt.format, tt.level, err, tt.wantErr)
		}
	}
}

func TestFlags(t *testing.T) {
	var f Flags
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	f.Register(fs, "warn")
	if err := fs.Parse([]string{"--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log, err := f.Logger(&out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec["msg"] != "shown" || strings.Contains(out.String(), "hidden") {
		t.Fatalf("want one JSON warn record, got %q (%v)", out.String(), err)
	}
	f.Level = "nope"
	if _, err := f.Logger(&out); err == nil || err.Error() != `--log-level "nope": use debug, info, warn or error` {
		t.Fatalf("want a flag error, got %v", err)
	}
}
