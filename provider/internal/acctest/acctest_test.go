package acctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadEnvFile(t *testing.T) {
	for _, tc := range []struct {
		name, content, wantErr string
		want                   map[string]string
	}{
		{
			name:    "dev controller format",
			content: "ZTNA_ADDR=https://127.0.0.1:4443\nZTNA_TOKEN=tok\nZTNA_CA_FINGERPRINT=sha256:ab\nZTNA_CA_FILE=/d/ca.pem\n",
			want:    map[string]string{"ZTNA_ADDR": "https://127.0.0.1:4443", "ZTNA_TOKEN": "tok", "ZTNA_CA_FINGERPRINT": "sha256:ab", "ZTNA_CA_FILE": "/d/ca.pem"},
		},
		{
			name:    "quotes, export, comments",
			content: "# dev\nexport ZTNA_ADDR='https://h:1'\n\nZTNA_TOKEN=\"t=x\"\nZTNA_CA_FINGERPRINT=sha256:cd\n",
			want:    map[string]string{"ZTNA_ADDR": "https://h:1", "ZTNA_TOKEN": "t=x", "ZTNA_CA_FINGERPRINT": "sha256:cd"},
		},
		{name: "missing token", content: "ZTNA_ADDR=https://h:1\nZTNA_CA_FINGERPRINT=sha256:cd\n", wantErr: "ZTNA_TOKEN missing"},
		{name: "malformed", content: "ZTNA_ADDR https://h:1\n", wantErr: "malformed line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ztna.env")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadEnvFile(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
