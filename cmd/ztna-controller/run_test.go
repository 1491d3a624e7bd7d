package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/internal/apiclient"
	"github.com/ztna/ztna/internal/pki"
	"github.com/ztna/ztna/internal/regkey"
)

// yamlKeys lists every key of the config file as dotted paths.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			keys = append(keys, yamlKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

func TestHelpDocumentsEveryKey(t *testing.T) {
	var out bytes.Buffer
	root := rootCommand()
	root.SetOut(&out)
	root.SetArgs([]string{"run", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, key := range yamlKeys(reflect.TypeOf(fileConfig{}), "") {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(help, leaf+":") {
			t.Errorf("run --help does not document %s", key)
		}
	}
	for _, def := range []string{`":443"`, `":6262"`, `":80"`} {
		if !strings.Contains(help, def) {
			t.Errorf("run --help does not show the default %s", def)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "hosts: [a]\nlisten:\n  edg: \":1\"\n", "edg"},
		{"bad listen", "hosts: [a]\nlisten:\n  edge: \"443\"\n", "listen.edge"},
		{"no hosts", "data_dir: /tmp/x\n", "hosts"},
		{"unknown driver", "hosts: [a]\nstore:\n  driver: mysql\n", "store.driver"},
		{"postgres without dsn", "hosts: [a]\nstore:\n  driver: postgres\n  ca_secret_file: /s\n", "store.dsn"},
		{"postgres without CA secret", "hosts: [a]\nstore:\n  driver: postgres\n  dsn: postgres://db/ztna\n", "store.ca_secret_file"},
		{"CA secret with sqlite", "hosts: [a]\nstore:\n  ca_secret_file: /s\n", "store.ca_secret_file"},
		{"short lifetime", "hosts: [a]\ncert_lifetime: 10ms\n", "cert_lifetime"},
		{"bad duration", "hosts: [a]\ncert_lifetime: soon\n", "soon"},
		{"short link timeout", "hosts: [a]\nfabric:\n  link_timeout: 1s\n", "fabric.link_timeout: 1s: want between 2s and 1h0m0s"},
		{"bad fabric records", "hosts: [a]\nfabric_records: openssl\n", `fabric_records: fabric records "openssl": want "tlsrecord" or "crypto-tls"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := rootCommand()
			root.SetArgs([]string{"run", "--config", writeFile(t, dir, "c.yaml", tc.yaml)})
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestRunServesFromConfig(t *testing.T) {
	dir := t.TempDir()
	addr := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}
	edge, control, fabric, metrics := addr(), addr(), addr(), addr()
	token := writeFile(t, dir, "token", "prod-token-0123456789\n")
	cfg := writeFile(t, dir, "c.yaml", `# production-like, on loopback
data_dir: `+filepath.Join(dir, "data")+`
listen:
  edge: "`+edge+`"
  control: "`+control+`"
  fabric: "`+fabric+`"
  metrics: "`+metrics+`"
hosts: [127.0.0.1]
token_file: `+token+`
cert_lifetime: 2h
log:
  format: text
`)
	ctx, cancel := context.WithCancel(context.Background())
	root := rootCommand()
	var logs bytes.Buffer
	root.SetErr(&logs)
	root.SetArgs([]string{"run", "--config", cfg})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	var ca *pki.CA
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		ca, err = pki.LoadCA(filepath.Join(dir, "data", pki.CACertFile), filepath.Join(dir, "data", pki.CAKeyFile))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CA in data_dir: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := apiclient.New("https://"+edge, "prod-token-0123456789", ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	for {
		_, err = c.ListRouters(context.Background())
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("API of a run controller: %v", err)
	}
	r, err := c.CreateRouter(context.Background(), api.RouterCreate{Name: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateRegistrationKey(context.Background(), api.RegistrationKeyCreate{RouterID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Keys advertise hosts[0] with the listen ports.
	if !strings.Contains(decodeKey(t, k.Key), `"https://127.0.0.1:`+portOf(edge)+`"`) {
		t.Errorf("key does not advertise the edge endpoint: %s", decodeKey(t, k.Key))
	}
}

func decodeKey(t *testing.T, s string) string {
	t.Helper()
	k, err := regkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(struct {
		Edge    []string `json:"edge"`
		Control []string `json:"control"`
	}{k.Edge, k.Control})
	return string(b)
}
