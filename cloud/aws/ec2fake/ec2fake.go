// Package ec2fake is an in-process EC2 endpoint speaking the EC2 Query protocol (form-encoded
// POST, XML responses and <Response><Errors> errors) for the operations ztna uses: subnets,
// security groups, instances, tags, images and their EBS snapshots. Tests point the real
// aws-sdk-go-v2 client at it, so the driver's requests go through the SDK's real serializers and
// deserializers.
//
// It models accounts the way AWS enforces them (accounts.go): a request's SigV4 access key names
// its account, images and snapshots have owners, and another account sees an image only with a
// launch permission and copies it only with createVolumePermission on its snapshots. The same
// endpoint answers STS (AssumeRole, GetCallerIdentity) for requests signed for service "sts".
package ec2fake

import (
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Range is one destination of a permission.
type Range struct{ CIDR, Description string }

// Permission is one security group rule set (protocol + port range + destinations).
type Permission struct {
	Protocol string
	From, To int
	Ranges   []Range
}

// Group is a security group.
type Group struct {
	ID, Name, Description, VpcID string
	Ingress, Egress              []Permission
	Tags                         map[string]string
}

// Instance is an EC2 instance.
type Instance struct {
	ID, ImageID, Type, SubnetID, VpcID, Zone, PrivateIP, State string
	Groups                                                     []string
	UserData                                                   string // decoded
	HTTPTokens                                                 string
	HopLimit                                                   int
	PublicIP                                                   bool
	RootDevice                                                 string
	RootVolumeID                                               string
	RootVolumeGiB                                              int
	RootEncrypted                                              bool
	Tags                                                       map[string]string
	VolumeTags                                                 map[string]string
}

// Subnet is a subnet.
type Subnet struct{ ID, VpcID, Zone, CIDR string }

// Image is an AMI. Owner defaults to DefaultAccount; an image without Snapshots gets one (every
// EBS-backed AMI has at least its root snapshot).
type Image struct {
	ID, Name, Owner, Created, RootDevice, Architecture, State string
	SourceRegion, SourceImageID                               string
	// LaunchUsers are the accounts granted launch permission; Public grants it to all.
	LaunchUsers []string
	Public      bool
	// Snapshots are the ids of the EBS snapshots in the image's block device mapping.
	Snapshots []string
	Tags      map[string]string
}

// Request is one API call as received, with the account that signed it.
type Request struct {
	Action  string
	Account string
	Params  url.Values
	Body    string
}

type failure struct {
	status        int
	code, message string
}

// Server is the fake EC2 endpoint of one region.
type Server struct {
	*httptest.Server
	Region string

	mu        sync.Mutex
	seq       int
	subnets   map[string]*Subnet
	groups    map[string]*Group
	instances map[string]*Instance
	images    map[string]*Image
	failures  map[string]failure
	requests  []Request
	// images in other regions, for CopyImage: region → id → image
	foreign   map[string]map[string]*Image
	snapshots map[string]*Snapshot // of this region's and the foreign images
	// keys and roles are the registered access keys (long-term and STS-issued) and IAM roles;
	// with no key registered every request is DefaultAccount's.
	keys  map[string]*accessKey
	roles map[string]*role
	// caller and callerARN are the account and principal of the request being handled (serve
	// holds mu throughout).
	caller, callerARN string
}

// New starts a fake for region; Close it when done.
func New(region string) *Server {
	s := &Server{
		Region: region, subnets: map[string]*Subnet{}, groups: map[string]*Group{},
		instances: map[string]*Instance{}, images: map[string]*Image{}, failures: map[string]failure{},
		foreign: map[string]map[string]*Image{}, snapshots: map[string]*Snapshot{},
		keys: map[string]*accessKey{}, roles: map[string]*role{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AddSubnet registers a subnet.
func (s *Server) AddSubnet(sn Subnet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subnets[sn.ID] = &sn
}

// AddImage registers an image in this region (State defaults to available).
func (s *Server) AddImage(img Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if img.State == "" {
		img.State = "available"
	}
	s.images[img.ID] = s.withSnapshots(img)
}

// AddForeignImage registers an image in another region, as a CopyImage source.
func (s *Server) AddForeignImage(region string, img Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.foreign[region] == nil {
		s.foreign[region] = map[string]*Image{}
	}
	s.foreign[region][img.ID] = s.withSnapshots(img)
}

// withSnapshots gives img its owner and snapshots: the ones named (created when unknown) or one.
func (s *Server) withSnapshots(img Image) *Image {
	if img.Owner == "" {
		img.Owner = DefaultAccount
	}
	if len(img.Snapshots) == 0 {
		img.Snapshots = []string{s.nextID("snap")}
	}
	for _, id := range img.Snapshots {
		if s.snapshots[id] == nil {
			s.snapshots[id] = &Snapshot{ID: id, Owner: img.Owner, VolumeGiB: 8, Tags: map[string]string{}}
		}
	}
	return &img
}

// AddSnapshot registers a snapshot (for an Image's Snapshots; Owner defaults to DefaultAccount).
func (s *Server) AddSnapshot(sn Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn.Owner == "" {
		sn.Owner = DefaultAccount
	}
	if sn.Tags == nil {
		sn.Tags = map[string]string{}
	}
	s.snapshots[sn.ID] = &sn
}

// Snapshots returns copies of all snapshots, sorted by id.
func (s *Server) Snapshots() []Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.snapshots)
}

// Fail makes every later call of action fail with an EC2 error (status 400 unless 403 fits).
func (s *Server) Fail(action string, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[action] = failure{status, code, message}
}

// Requests returns every call received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Groups returns copies of all security groups, sorted by id.
func (s *Server) Groups() []Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.groups)
}

// Instances returns copies of all instances (terminated ones included), sorted by id.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.instances)
}

// Images returns copies of this region's images, sorted by id.
func (s *Server) Images() []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.images)
}

// copies returns copies of m's items (keyed by id), in id order.
func copies[T any](m map[string]*T) []T {
	var out []T
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[id])
	}
	return out
}

// SetInstanceState changes an instance's state, as if it happened out of band.
func (s *Server) SetInstanceState(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[id].State = state
}

// DeleteGroupOutOfBand removes a group as if someone deleted it in the console.
func (s *Server) DeleteGroupOutOfBand(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, id)
}

// AddIngressOutOfBand adds an ingress rule as if someone opened a port in the console.
func (s *Server) AddIngressOutOfBand(id string, p Permission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id].Ingress = append(s.groups[id].Ingress, p)
}

// AddEgressOutOfBand adds an egress rule as if someone ran AuthorizeSecurityGroupEgress by hand
// (for example -1 to 0.0.0.0/0).
func (s *Server) AddEgressOutOfBand(id string, p Permission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id].Egress = append(s.groups[id].Egress, p)
}

type apiErr struct {
	status        int
	code, message string
}

func (e *apiErr) Error() string { return e.code + ": " + e.message }

func errf(code, format string, a ...any) *apiErr {
	return &apiErr{http.StatusBadRequest, code, fmt.Sprintf(format, a...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	form, perr := url.ParseQuery(string(raw))
	if err != nil || perr != nil || r.Method != http.MethodPost {
		http.Error(w, "EC2 Query requests are form-encoded POSTs", http.StatusBadRequest)
		return
	}
	action := form.Get("Action")
	s.mu.Lock()
	defer s.mu.Unlock()
	sig, aerr := s.authenticate(r, raw)
	if aerr != nil {
		if sig.service == "sts" {
			writeSTSError(w, aerr)
		} else {
			writeError(w, aerr)
		}
		return
	}
	s.caller, s.callerARN = sig.account, sig.principal
	s.requests = append(s.requests, Request{Action: action, Account: sig.account, Params: form, Body: form.Encode()})
	if sig.service == "sts" {
		s.serveSTS(w, action, form)
		return
	}
	if f, ok := s.failures[action]; ok {
		writeError(w, &apiErr{f.status, f.code, f.message})
		return
	}
	h, ok := handlers[action]
	if !ok {
		h, ok = snapshotHandlers[action]
	}
	if !ok {
		writeError(w, errf("InvalidAction", "the fake does not implement %s", action))
		return
	}
	body, herr := h(s, form)
	if herr != nil {
		writeError(w, herr)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	inner, merr := innerXML(body)
	if merr != nil {
		writeError(w, &apiErr{http.StatusInternalServerError, "InternalError", merr.Error()})
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake-req</requestId>%s</%sResponse>`, action, inner, action)
}

// maxBody bounds a request body; the largest ztna sends (RunInstances with user data) is ~30 KiB.
const maxBody = 1 << 20

func writeError(w http.ResponseWriter, e *apiErr) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>fake-req</RequestID></Response>`,
		xmlEscape(e.code), xmlEscape(e.message))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%017x", prefix, s.seq)
}

// members returns the structured list prefix.1.*, prefix.2.*, ... with the prefix stripped
// (the EC2 Query encoding of lists).
func members(v url.Values, prefix string) []url.Values {
	var out []url.Values
	for i := 1; ; i++ {
		p := prefix + "." + strconv.Itoa(i)
		m := url.Values{}
		for k, vs := range v {
			if k == p {
				m[""] = vs
			} else if strings.HasPrefix(k, p+".") {
				m[strings.TrimPrefix(k, p+".")] = vs
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

// list returns the scalar list prefix.1, prefix.2, ...
func list(v url.Values, prefix string) []string {
	var out []string
	for _, m := range members(v, prefix) {
		out = append(out, m.Get(""))
	}
	return out
}

func tagsOf(v url.Values, prefix string) map[string]string {
	out := map[string]string{}
	for _, t := range members(v, prefix) {
		out[t.Get("Key")] = t.Get("Value")
	}
	return out
}

// tagSpec returns the tags of the TagSpecification for resourceType.
func tagSpec(v url.Values, resourceType string) map[string]string {
	for _, ts := range members(v, "TagSpecification") {
		if ts.Get("ResourceType") == resourceType {
			return tagsOf(ts, "Tag")
		}
	}
	return map[string]string{}
}

type filter struct {
	name   string
	values []string
}

func filters(v url.Values) []filter {
	var out []filter
	for _, f := range members(v, "Filter") {
		out = append(out, filter{f.Get("Name"), list(f, "Value")})
	}
	return out
}

func matchAny(patterns []string, value string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, value); ok {
			return true
		}
	}
	return false
}

func matchTags(f filter, tags map[string]string) (handled, ok bool) {
	if k, isTag := strings.CutPrefix(f.name, "tag:"); isTag {
		v, has := tags[k]
		return true, has && matchAny(f.values, v)
	}
	return false, false
}

// AddGroup registers a security group made outside ztna (no egress rule unless given).
func (s *Server) AddGroup(g Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.Tags == nil {
		g.Tags = map[string]string{}
	}
	s.groups[g.ID] = &g
}

// SetInstanceTagOutOfBand sets a tag on an instance as if someone edited it in the console.
func (s *Server) SetInstanceTagOutOfBand(id, key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[id].Tags[key] = value
}
