package metadata

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/ztna/ztna/cloud"
)

// maxPayload bounds what is read from a metadata service (user data is at most 64 KiB on AWS
// and Azure).
const maxPayload = 1 << 20

// get performs a metadata request. A 404 is reported as notFound=true with no error.
func get(ctx context.Context, c *http.Client, method, url string, header http.Header) (body []byte, resp *http.Response, notFound bool, err error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, nil, false, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err = c.Do(req)
	if err != nil {
		return nil, nil, false, fmt.Errorf("metadata service: %w", err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxPayload))
	if err != nil {
		return nil, nil, false, fmt.Errorf("metadata service: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, resp, true, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, false, fmt.Errorf("metadata service: %s %s: %s", method, url, resp.Status)
	}
	return body, resp, false, nil
}

// aws reads EC2 instance metadata with IMDSv2 (session token), the only mode hardened instances
// allow.
type aws struct {
	base string
	http *http.Client
}

func (a *aws) token(ctx context.Context) (http.Header, error) {
	tok, _, _, err := get(ctx, a.http, http.MethodPut, a.base+"/latest/api/token",
		http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"300"}})
	if err != nil {
		return nil, fmt.Errorf("IMDSv2 token: %w", err)
	}
	return http.Header{"X-Aws-Ec2-Metadata-Token": {strings.TrimSpace(string(tok))}}, nil
}

func (a *aws) Key(ctx context.Context) (string, error) {
	h, err := a.token(ctx)
	if err != nil {
		return "", err
	}
	body, _, notFound, err := get(ctx, a.http, http.MethodGet, a.base+"/latest/user-data", h)
	if err != nil {
		return "", err
	}
	if notFound {
		return "", fmt.Errorf("%w: the instance has no user data; launch it with the registration key as user data", ErrNoKey)
	}
	return extractKey("EC2 user data", body)
}

// FailureDomain reads the region and the availability zone. Instances whose IMDS predates
// placement/region get the region from the zone name, which is the region plus a letter.
func (a *aws) FailureDomain(ctx context.Context) (string, error) {
	h, err := a.token(ctx)
	if err != nil {
		return "", err
	}
	placement := func(item string) (string, bool, error) {
		body, _, notFound, err := get(ctx, a.http, http.MethodGet, a.base+"/latest/meta-data/placement/"+item, h)
		return strings.TrimSpace(string(body)), notFound, err
	}
	az, _, err := placement("availability-zone")
	if err != nil {
		return "", err
	}
	if az == "" {
		return "", errors.New("metadata service: the instance reports no availability zone")
	}
	region, notFound, err := placement("region")
	if err != nil {
		return "", err
	}
	if notFound || region == "" {
		region = strings.TrimRight(az, "abcdefghijklmnopqrstuvwxyz")
	}
	return cloud.FailureDomain{Cloud: AWS, Region: region, Zone: az}.String(), nil
}

// gcp reads the GCE metadata server; every answer must carry Metadata-Flavor: Google, which a
// random web server (or a captive portal) answering on that name would not.
type gcp struct {
	base string
	http *http.Client
}

func (g *gcp) get(ctx context.Context, p string) ([]byte, bool, error) {
	body, resp, notFound, err := get(ctx, g.http, http.MethodGet, g.base+"/computeMetadata/v1/"+p, http.Header{"Metadata-Flavor": {"Google"}})
	if resp != nil && resp.Header.Get("Metadata-Flavor") != "Google" {
		return nil, false, errors.New("metadata service: the answer lacks Metadata-Flavor: Google; this is not the GCE metadata server")
	}
	return body, notFound, err
}

func (g *gcp) Key(ctx context.Context) (string, error) {
	body, notFound, err := g.get(ctx, "instance/attributes/"+AttributeKey)
	if err != nil {
		return "", err
	}
	if notFound {
		return "", fmt.Errorf("%w: the instance has no metadata item %q; set it to the registration key", ErrNoKey, AttributeKey)
	}
	return extractKey("GCE metadata item "+AttributeKey, body)
}

func (g *gcp) FailureDomain(ctx context.Context) (string, error) {
	zone, _, err := g.get(ctx, "instance/zone") // projects/<number>/zones/<zone>
	if err != nil {
		return "", err
	}
	z := path.Base(strings.TrimSpace(string(zone)))
	if z == "." || z == "/" {
		return "", errors.New("metadata service: the instance reports no zone")
	}
	return cloud.FailureDomain{Cloud: GCP, Region: cloud.GCPZoneRegion(z), Zone: z}.String(), nil
}

// azure reads user data from the Azure Instance Metadata Service, falling back to the custom
// data file the Azure agent writes (which only root can read, hence second).
type azure struct {
	base       string
	http       *http.Client
	customData string
}

var azureHeader = http.Header{"Metadata": {"true"}}

func (a *azure) Key(ctx context.Context) (string, error) {
	body, _, _, err := get(ctx, a.http, http.MethodGet, a.base+"/metadata/instance/compute/userData?api-version=2021-01-01&format=text", azureHeader)
	if err != nil {
		return "", err
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("%w: Azure user data is not base64: %v", ErrNoKey, err)
		}
		return extractKey("Azure user data", raw)
	}
	raw, err := os.ReadFile(a.customData)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: the VM has neither user data nor custom data (%s); create it with the registration key as user data", ErrNoKey, a.customData)
	}
	if err != nil {
		return "", fmt.Errorf("%w: custom data: %v", ErrNoKey, err)
	}
	// The agent may leave custom data base64-encoded or decoded, depending on its version.
	if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw))); err == nil {
		raw = dec
	}
	return extractKey("Azure custom data "+a.customData, raw)
}

func (a *azure) FailureDomain(ctx context.Context) (string, error) {
	body, _, _, err := get(ctx, a.http, http.MethodGet, a.base+"/metadata/instance/compute?api-version=2021-02-01", azureHeader)
	if err != nil {
		return "", err
	}
	var c struct {
		Location string `json:"location"`
		Zone     string `json:"zone"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", fmt.Errorf("metadata service: compute document: %w", err)
	}
	if c.Location == "" {
		return "", errors.New("metadata service: the compute document has no location")
	}
	// Zone is "" for a VM placed without an availability zone; the format keeps its slot.
	return cloud.FailureDomain{Cloud: Azure, Region: c.Location, Zone: c.Zone}.String(), nil
}
