package metadata

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztna/ztna/internal/regkey"
	"github.com/ztna/ztna/router/metadata/metadatatest"
)

func testKey(t *testing.T) string {
	t.Helper()
	k := &regkey.Key{ID: "k1", Secret: regkey.NewSecret(), Kind: regkey.KindRouter, Edge: []string{"https://ctl.example.test"},
		CA: "sha256:" + strings.Repeat("ab", 32), Exp: 1}
	return k.Encode()
}

// impostor is a web server that is not a metadata service but answers anything with the key.
func impostor(t *testing.T, key string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(key)) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestSources(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "registration-key")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	cloudInit := filepath.Join(dir, "cloud-init")
	os.WriteFile(cloudInit, []byte("#cloud-config\nwrite_files:\n- content: "+key+"\n"), 0o600)
	customData := filepath.Join(dir, "CustomData")
	os.WriteFile(customData, []byte(base64.StdEncoding.EncodeToString([]byte(key+"\n"))), 0o600)
	twoKeys := filepath.Join(dir, "two")
	os.WriteFile(twoKeys, []byte(key+"\n"+testKey(t)+"\n"), 0o600)

	tests := []struct {
		name    string
		source  string
		opts    Options
		wantKey bool
		wantFD  string
		errSays string
		final   bool
	}{
		{name: "aws user data", source: AWS, opts: Options{Endpoint: metadatatest.AWS(t, key+"\n").URL}, wantKey: true, wantFD: "aws/eu-west-1/eu-west-1b"},
		{name: "aws without user data", source: AWS, opts: Options{Endpoint: metadatatest.AWS(t, "").URL}, errSays: "launch it with the registration key as user data", final: true},
		{name: "aws user data without a key", source: AWS, opts: Options{Endpoint: metadatatest.AWS(t, "#!/bin/sh\necho hi\n").URL}, errSays: "must contain a ztna-key-v1.", final: true},
		{name: "gcp attribute", source: GCP, opts: Options{Endpoint: metadatatest.GCP(t, map[string]string{AttributeKey: key}).URL}, wantKey: true, wantFD: "gcp/europe-west1/europe-west1-b"},
		{name: "gcp without attribute", source: GCP, opts: Options{Endpoint: metadatatest.GCP(t, nil).URL}, errSays: `no metadata item "ztna-registration-key"`, final: true},
		{name: "gcp impostor", source: GCP, opts: Options{Endpoint: impostor(t, key)}, errSays: "not the GCE metadata server"},
		{name: "azure user data", source: Azure, opts: Options{Endpoint: metadatatest.Azure(t, key+"\n").URL}, wantKey: true, wantFD: "azure/westeurope/2"},
		{name: "azure custom data", source: Azure, opts: Options{Endpoint: metadatatest.Azure(t, "").URL, CustomDataFile: customData}, wantKey: true, wantFD: "azure/westeurope/2"},
		{name: "azure nothing", source: Azure, opts: Options{Endpoint: metadatatest.Azure(t, "").URL, CustomDataFile: filepath.Join(dir, "none")}, errSays: "neither user data nor custom data", final: true},
		{name: "file", source: File, opts: Options{KeyFile: keyFile}, wantKey: true},
		{name: "file inside cloud-init", source: File, opts: Options{KeyFile: cloudInit}, wantKey: true},
		{name: "file missing", source: File, opts: Options{KeyFile: filepath.Join(dir, "none")}, errSays: "pass --key-file", final: true},
		{name: "file with two keys", source: File, opts: Options{KeyFile: twoKeys}, errSays: "contains 2 registration keys", final: true},
		{name: "unreachable metadata service", source: AWS, opts: Options{Endpoint: "http://127.0.0.1:1"}, errSays: "metadata service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.source, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Key(context.Background())
			if tt.wantKey {
				if err != nil || got != key {
					t.Fatalf("Key = %.20q..., %v", got, err)
				}
				fd, err := src.FailureDomain(context.Background())
				if err != nil || fd != tt.wantFD {
					t.Fatalf("FailureDomain = %q, %v; want %q", fd, err, tt.wantFD)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errSays) {
				t.Fatalf("err = %v, want mention of %q", err, tt.errSays)
			}
			if errors.Is(err, ErrNoKey) != tt.final {
				t.Fatalf("errors.Is(err, ErrNoKey) = %v, want %v", !tt.final, tt.final)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatal("error message leaks the key")
			}
		})
	}
	if _, err := New("openstack", Options{}); err == nil || !strings.Contains(err.Error(), "aws, gcp, azure, file") {
		t.Fatalf("unknown source: %v", err)
	}
}

func TestDefaultKeyFileUsesSystemdCredential(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/ztna-router-bootstrap.service")
	if got := DefaultKeyFile(); got != "/run/credentials/ztna-router-bootstrap.service/registration-key" {
		t.Fatalf("DefaultKeyFile = %q", got)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if got := DefaultKeyFile(); got != "/etc/ztna/registration-key" {
		t.Fatalf("DefaultKeyFile = %q", got)
	}
}

// override serves path from a fake with a different answer (status, body, headers) and passes
// every other request to the fake: metadata services that answer differently than the fakes.
func override(t *testing.T, fake *httptest.Server, path string, status int, body string, header http.Header) string {
	target, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			proxy.ServeHTTP(w, r)
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestFailureDomain checks that every source reports "<cloud>/<region>/<zone>", the format of
// cloud.FailureDomain that ztna_router_host reports, including where the metadata differs.
func TestFailureDomain(t *testing.T) {
	google := http.Header{"Metadata-Flavor": {"Google"}}
	tests := []struct {
		name     string
		source   string
		endpoint string
		want     string
		errSays  string
	}{
		{"aws", AWS, metadatatest.AWS(t, "").URL, "aws/eu-west-1/eu-west-1b", ""},
		{"aws without placement/region", AWS,
			override(t, metadatatest.AWS(t, ""), "/latest/meta-data/placement/region", http.StatusNotFound, "", nil),
			"aws/eu-west-1/eu-west-1b", ""},
		{"aws without a zone", AWS,
			override(t, metadatatest.AWS(t, ""), "/latest/meta-data/placement/availability-zone", http.StatusOK, "", nil),
			"", "no availability zone"},
		{"gcp", GCP, metadatatest.GCP(t, nil).URL, "gcp/europe-west1/europe-west1-b", ""},
		{"gcp other region", GCP,
			override(t, metadatatest.GCP(t, nil), "/computeMetadata/v1/instance/zone", http.StatusOK, "projects/42/zones/us-east4-c\n", google),
			"gcp/us-east4/us-east4-c", ""},
		{"gcp without a zone", GCP,
			override(t, metadatatest.GCP(t, nil), "/computeMetadata/v1/instance/zone", http.StatusOK, "", google),
			"", "no zone"},
		{"azure", Azure, metadatatest.Azure(t, "").URL, "azure/westeurope/2", ""},
		{"azure without a zone", Azure,
			override(t, metadatatest.Azure(t, ""), "/metadata/instance/compute", http.StatusOK, `{"location":"westeurope","zone":""}`, nil),
			"azure/westeurope/", ""},
		{"azure without a location", Azure,
			override(t, metadatatest.Azure(t, ""), "/metadata/instance/compute", http.StatusOK, `{"zone":"1"}`, nil),
			"", "no location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.source, Options{Endpoint: tt.endpoint})
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.FailureDomain(context.Background())
			if tt.errSays != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSays) {
					t.Fatalf("FailureDomain = %q, %v; want an error mentioning %q", got, err, tt.errSays)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FailureDomain = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
