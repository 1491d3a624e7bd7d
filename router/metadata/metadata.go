// Package metadata reads, on a router host's first boot, the one-time registration key from
// where the platform delivered it — AWS user data (IMDSv2), a GCP metadata attribute, Azure user
// data (IMDS) or custom data, or a file — and the host's failure domain (cloud/region/zone), so that
// a baked image enrols itself without anyone logging in. The cloud drivers (cloud/...) put the key
// there; see cloud.RegistrationKeyMetadataKey and cloud.UserData.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ztna/ztna/internal/regkey"
)

// Sources by name, as `ztna-router bootstrap --from-metadata` takes them.
const (
	AWS   = "aws"
	GCP   = "gcp"
	Azure = "azure"
	File  = "file"
)

// Names lists the sources.
var Names = []string{AWS, GCP, Azure, File}

// AttributeKey is the GCP instance attribute that carries the key (cloud.RegistrationKeyMetadataKey).
const AttributeKey = "ztna-registration-key"

// DefaultKeyFile is the key file of the "file" source when --key-file is not given: the systemd
// credential the image's bootstrap unit passes, else the plain file.
func DefaultKeyFile() string {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		return dir + "/registration-key"
	}
	return "/etc/ztna/registration-key"
}

// ErrNoKey means the source answered but holds no registration key: retrying will not help.
var ErrNoKey = errors.New("no registration key")

// Source is where a registration key comes from.
type Source interface {
	// Key returns the registration key string. Errors wrapping ErrNoKey are final; others
	// (metadata service not reachable yet during boot) are worth retrying.
	Key(ctx context.Context) (string, error)
	// FailureDomain returns the host's failure domain in the one format of cloud.FailureDomain
	// ("<cloud>/<region>/<zone>", e.g. "aws/eu-west-1/eu-west-1b"), or "" when the source
	// cannot tell.
	FailureDomain(ctx context.Context) (string, error)
}

// Options configure a Source.
type Options struct {
	// Endpoint overrides the metadata service's base URL (tests, proxies); "" = the platform's.
	Endpoint string
	// KeyFile is the file source's key file ("" = DefaultKeyFile()).
	KeyFile string
	// CustomDataFile is where the Azure agent leaves custom data, read when IMDS user data is
	// empty ("" = /var/lib/waagent/CustomData).
	CustomDataFile string
	// HTTP is the client for metadata requests (nil = one with a short timeout and no proxy:
	// metadata services are link-local and must never be asked through a proxy).
	HTTP *http.Client
}

// New returns the named source.
func New(name string, o Options) (Source, error) {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	}
	switch name {
	case AWS:
		return &aws{base: or(o.Endpoint, "http://169.254.169.254"), http: o.HTTP}, nil
	case GCP:
		return &gcp{base: or(o.Endpoint, "http://metadata.google.internal"), http: o.HTTP}, nil
	case Azure:
		return &azure{base: or(o.Endpoint, "http://169.254.169.254"), http: o.HTTP,
			customData: or(o.CustomDataFile, "/var/lib/waagent/CustomData")}, nil
	case File:
		return &file{path: or(o.KeyFile, DefaultKeyFile())}, nil
	}
	return nil, fmt.Errorf("unknown metadata source %q: use one of %s", name, strings.Join(Names, ", "))
}

func or(v, def string) string {
	if v != "" {
		return strings.TrimSuffix(v, "/")
	}
	return def
}

var keyPattern = regexp.MustCompile(regexp.QuoteMeta(regkey.Prefix) + `[A-Za-z0-9_-]+={0,2}`)

// extractKey finds the one registration key in a payload (the key alone, or the key inside a
// cloud-init document or an environment file) and checks it parses.
func extractKey(where string, payload []byte) (string, error) {
	found := keyPattern.FindAllString(string(payload), -1)
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("%w in %s: it must contain a %s... registration key", ErrNoKey, where, regkey.Prefix)
	case len(found) > 1:
		return "", fmt.Errorf("%w in %s: it contains %d registration keys, expected one", ErrNoKey, where, len(found))
	}
	if _, err := regkey.Parse(found[0]); err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	return found[0], nil
}

// file reads the key from a file.
type file struct{ path string }

func (f *file) Key(context.Context) (string, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %s does not exist; put the registration key there or pass --key-file", ErrNoKey, f.path)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	return extractKey(f.path, b)
}

func (f *file) FailureDomain(context.Context) (string, error) { return "", nil }
