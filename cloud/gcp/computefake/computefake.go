// Package computefake is an in-process Compute Engine endpoint speaking the REST/JSON API
// (protojson encoding of the computepb messages, long-running operations, Google JSON errors)
// for the calls ztna uses: instances, firewalls, images and their operations. Tests point the
// real cloud.google.com/go/compute REST clients at it with option.WithEndpoint.
package computefake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Request is one API call as received.
type Request struct {
	Method, Path, Body string
}

type httpFailure struct {
	status          int
	reason, message string
}

type opFailure struct {
	status        int32
	code, message string
}

// Server is a fake Compute Engine API.
type Server struct {
	*httptest.Server

	mu          sync.Mutex
	seq         int
	instances   map[string]*computepb.Instance // key project/zone/name
	firewalls   map[string]*computepb.Firewall // key project/name
	images      map[string]*computepb.Image    // key project/name
	ops         map[string]*computepb.Operation
	networks    map[string]bool // "projects/p/global/networks/n"
	subnetworks map[string]bool // "projects/p/regions/r/subnetworks/s"
	httpFail    map[string]httpFailure
	opFail      map[string]opFailure
	requests    []Request
}

// MachineTypes the fake accepts.
var MachineTypes = []string{"e2-standard-2", "e2-standard-4", "e2-standard-8", "e2-medium", "n2-standard-2"}

// New starts a fake; Close it when done.
func New() *Server {
	s := &Server{
		instances: map[string]*computepb.Instance{}, firewalls: map[string]*computepb.Firewall{},
		images: map[string]*computepb.Image{}, ops: map[string]*computepb.Operation{},
		networks: map[string]bool{}, subnetworks: map[string]bool{},
		httpFail: map[string]httpFailure{}, opFail: map[string]opFailure{},
	}
	mux := http.NewServeMux()
	// handle serves pattern with h under the lock, unless an HTTP failure is injected for rpc.
	handle := func(pattern, rpc string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.failed(w, rpc) {
				h(w, r)
			}
		})
	}
	const p = "/compute/v1/projects/{project}"
	handle("POST "+p+"/zones/{zone}/instances", "instances.insert", s.insertInstance)
	handle("GET "+p+"/zones/{zone}/instances/{name}", "instances.get", s.getInstance)
	handle("DELETE "+p+"/zones/{zone}/instances/{name}", "instances.delete", s.deleteInstance)
	handle("POST "+p+"/zones/{zone}/instances/{name}/setLabels", "instances.setLabels", s.setLabels)
	handle("GET "+p+"/zones/{zone}/operations/{op}", "zoneOperations.get", s.getOperation)
	handle("GET "+p+"/global/operations/{op}", "globalOperations.get", s.getOperation)
	handle("POST "+p+"/global/firewalls", "firewalls.insert", s.insertFirewall)
	handle("GET "+p+"/global/firewalls", "firewalls.list", s.listFirewalls)
	handle("DELETE "+p+"/global/firewalls/{name}", "firewalls.delete", s.deleteFirewall)
	handle("PATCH "+p+"/global/firewalls/{name}", "firewalls.patch", s.patchFirewall)
	handle("GET "+p+"/global/images/family/{family}", "images.getFromFamily", s.imageFromFamily)
	handle("GET "+p+"/global/images/{name}", "images.get", s.getImage)
	handle("POST "+p+"/global/images", "images.insert", s.insertImage)
	s.Server = httptest.NewServer(s.record(mux))
	return s
}

func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		s.mu.Lock()
		s.requests = append(s.requests, Request{r.Method, r.URL.RequestURI(), string(body)})
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// AddNetwork registers a VPC network ("projects/p/global/networks/n").
func (s *Server) AddNetwork(url string) { s.mu.Lock(); s.networks[url] = true; s.mu.Unlock() }

// AddSubnetwork registers a subnetwork ("projects/p/regions/r/subnetworks/s").
func (s *Server) AddSubnetwork(url string) { s.mu.Lock(); s.subnetworks[url] = true; s.mu.Unlock() }

// AddImage registers an image in project.
func (s *Server) AddImage(project string, img *computepb.Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img = proto.Clone(img).(*computepb.Image)
	img.SelfLink = proto.String(fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/global/images/%s", project, img.GetName()))
	if img.Status == nil {
		img.Status = proto.String("READY")
	}
	s.images[project+"/"+img.GetName()] = img
}

// FailHTTP makes every later call of rpc ("instances.insert", "firewalls.list", ...) fail with
// an HTTP error carrying a Google error reason.
func (s *Server) FailHTTP(rpc string, status int, reason, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.httpFail[rpc] = httpFailure{status, reason, message}
}

// FailOperation makes every later rpc accept the request but finish its operation with an
// error, the way Compute Engine reports quota exhaustion and resource pool exhaustion.
func (s *Server) FailOperation(rpc string, httpStatus int32, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opFail[rpc] = opFailure{httpStatus, code, message}
}

// Requests returns every call received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Instances returns copies of all instances, sorted by name.
func (s *Server) Instances() []*computepb.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clones(s.instances, "")
}

// Firewalls returns copies of all firewall rules, sorted by name.
func (s *Server) Firewalls() []*computepb.Firewall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clones(s.firewalls, "")
}

// Images returns copies of the images of project, sorted by name.
func (s *Server) Images(project string) []*computepb.Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clones(s.images, project+"/")
}

// clones returns copies of the resources of m whose keys start with prefix, in key order.
func clones[T proto.Message](m map[string]T, prefix string) []T {
	var out []T
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, proto.Clone(m[k]).(T))
		}
	}
	return out
}

// DeleteFirewallOutOfBand removes a rule as if someone deleted it in the console.
func (s *Server) DeleteFirewallOutOfBand(project, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.firewalls, project+"/"+name)
}

// DeleteInstanceOutOfBand removes an instance as if someone deleted it in the console.
func (s *Server) DeleteInstanceOutOfBand(project, zone, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.instances, project+"/"+zone+"/"+name)
}

func writeJSON(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.Marshal(m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Write(b)
}

// writeError writes the Google JSON error format that googleapi.CheckResponse parses.
func writeError(w http.ResponseWriter, status int, reason, message string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": status, "message": message,
		"errors": []map[string]string{{"domain": "global", "reason": reason, "message": message}},
	}})
}

func notFound(w http.ResponseWriter, resource string) {
	writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("The resource '%s' was not found", resource))
}

// failed applies an injected HTTP failure; the caller holds the lock.
func (s *Server) failed(w http.ResponseWriter, rpc string) bool {
	if f, ok := s.httpFail[rpc]; ok {
		writeError(w, f.status, f.reason, f.message)
		return true
	}
	return false
}

// readResource reads the resource an insert call sends into m; on a bad body it answers the
// call and returns false.
func readResource(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = protojson.UnmarshalOptions{}.Unmarshal(b, m)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "parseError", "Invalid JSON payload received. "+err.Error())
		return false
	}
	return true
}

func alreadyExists(w http.ResponseWriter, resource string) {
	writeError(w, http.StatusConflict, "alreadyExists", fmt.Sprintf("The resource '%s' already exists", resource))
}

// operation records a long-running operation that is RUNNING now and DONE on its first poll
// (with the injected error for rpc, if any). It returns the injected failure so the caller
// can skip the change.
func (s *Server) operation(w http.ResponseWriter, r *http.Request, rpc, target string) bool {
	s.seq++
	op := &computepb.Operation{
		Name: proto.String(fmt.Sprintf("operation-%d", s.seq)), Status: computepb.Operation_RUNNING.Enum(),
		OperationType: proto.String(rpc), TargetLink: proto.String(target),
	}
	if z := r.PathValue("zone"); z != "" {
		op.Zone = proto.String("https://www.googleapis.com/compute/v1/projects/" + r.PathValue("project") + "/zones/" + z)
	}
	f, failing := s.opFail[rpc]
	if failing {
		op.HttpErrorStatusCode = proto.Int32(f.status)
		op.HttpErrorMessage = proto.String(http.StatusText(int(f.status)))
		op.Error = &computepb.Error{Errors: []*computepb.Errors{{Code: proto.String(f.code), Message: proto.String(f.message)}}}
	}
	s.ops[op.GetName()] = op
	running := proto.Clone(op).(*computepb.Operation)
	running.Error, running.HttpErrorStatusCode, running.HttpErrorMessage = nil, nil, nil
	writeJSON(w, running)
	return failing
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) {
	op, ok := s.ops[r.PathValue("op")]
	if !ok {
		notFound(w, "operations/"+r.PathValue("op"))
		return
	}
	op.Status = computepb.Operation_DONE.Enum()
	op.Progress = proto.Int32(100)
	writeJSON(w, op)
}

// resourcePath strips the host of a resource URL: compute accepts full and partial URLs.
func resourcePath(u string) string {
	if i := strings.Index(u, "/projects/"); i >= 0 {
		return u[i+1:]
	}
	return u
}

func (s *Server) insertInstance(w http.ResponseWriter, r *http.Request) {
	project, zone := r.PathValue("project"), r.PathValue("zone")
	inst := &computepb.Instance{}
	if !readResource(w, r, inst) {
		return
	}
	key := project + "/" + zone + "/" + inst.GetName()
	if _, ok := s.instances[key]; ok {
		alreadyExists(w, fmt.Sprintf("projects/%s/zones/%s/instances/%s", project, zone, inst.GetName()))
		return
	}
	mt := resourcePath(inst.GetMachineType())
	if want := "zones/" + zone + "/machineTypes/"; !strings.HasPrefix(mt, want) && !strings.HasPrefix(mt, "projects/"+project+"/"+want) || !slices.Contains(MachineTypes, mt[strings.LastIndex(mt, "/")+1:]) {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Invalid value for field 'resource.machineType': '%s'. Machine type with name '%s' does not exist in zone '%s'.", inst.GetMachineType(), mt[strings.LastIndex(mt, "/")+1:], zone))
		return
	}
	for _, nic := range inst.GetNetworkInterfaces() {
		if n := resourcePath(nic.GetNetwork()); n != "" && !s.networks[n] {
			notFound(w, n)
			return
		}
		if sn := resourcePath(nic.GetSubnetwork()); sn != "" && !s.subnetworks[sn] {
			notFound(w, sn)
			return
		}
	}
	for _, d := range inst.GetDisks() {
		if src := d.GetInitializeParams().GetSourceImage(); src != "" && s.resolveImage(resourcePath(src)) == nil {
			notFound(w, resourcePath(src))
			return
		}
	}
	self := fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/zones/%s/instances/%s", project, zone, inst.GetName())
	if s.operation(w, r, "instances.insert", self) {
		return
	}
	s.seq++
	inst.Id = proto.Uint64(uint64(1000 + s.seq))
	inst.SelfLink = proto.String(self)
	inst.Zone = proto.String("https://www.googleapis.com/compute/v1/projects/" + project + "/zones/" + zone)
	inst.MachineType = proto.String("https://www.googleapis.com/compute/v1/projects/" + project + "/" + strings.TrimPrefix(mt, "projects/"+project+"/"))
	inst.Status = proto.String("RUNNING")
	inst.LabelFingerprint = proto.String(labelFingerprint(inst.GetLabels()))
	for i, nic := range inst.GetNetworkInterfaces() {
		nic.NetworkIP = proto.String(fmt.Sprintf("10.128.0.%d", s.seq%250+2))
		nic.Name = proto.String(fmt.Sprintf("nic%d", i))
	}
	s.instances[key] = inst
}

func (s *Server) resolveImage(path string) *computepb.Image {
	parts := strings.Split(path, "/") // projects/p/global/images/name or .../images/family/f
	if len(parts) == 5 && parts[0] == "projects" && parts[3] == "images" {
		return s.images[parts[1]+"/"+parts[4]]
	}
	if len(parts) == 6 && parts[0] == "projects" && parts[4] == "family" {
		return s.newestInFamily(parts[1], parts[5])
	}
	return nil
}

func (s *Server) newestInFamily(project, family string) *computepb.Image {
	var best *computepb.Image
	for k, img := range s.images {
		if strings.HasPrefix(k, project+"/") && img.GetFamily() == family && img.GetDeprecated().GetState() == "" &&
			(best == nil || img.GetCreationTimestamp() > best.GetCreationTimestamp()) {
			best = img
		}
	}
	return best
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	inst, ok := s.instances[r.PathValue("project")+"/"+r.PathValue("zone")+"/"+r.PathValue("name")]
	if !ok {
		notFound(w, fmt.Sprintf("projects/%s/zones/%s/instances/%s", r.PathValue("project"), r.PathValue("zone"), r.PathValue("name")))
		return
	}
	writeJSON(w, inst)
}

// labelFingerprint is the fingerprint of a label set, which changes whenever the labels do
// (Compute Engine's is an opaque base64 hash too).
func labelFingerprint(labels map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(h, "%q=%q;", k, labels[k])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)[:8])
}

var (
	labelKeyRE   = regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`)
)

// setLabels replaces an instance's labels, as instances.setLabels does: the request must
// carry the fingerprint of the labels it replaces (a stale or missing one is 412
// conditionNotMet), and the labels must follow the label rules (at most 64).
func (s *Server) setLabels(w http.ResponseWriter, r *http.Request) {
	project, zone, name := r.PathValue("project"), r.PathValue("zone"), r.PathValue("name")
	inst, ok := s.instances[project+"/"+zone+"/"+name]
	if !ok {
		notFound(w, fmt.Sprintf("projects/%s/zones/%s/instances/%s", project, zone, name))
		return
	}
	req := &computepb.InstancesSetLabelsRequest{}
	if !readResource(w, r, req) {
		return
	}
	if req.GetLabelFingerprint() != inst.GetLabelFingerprint() {
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet",
			"Labels fingerprint either invalid or resource labels have changed")
		return
	}
	if len(req.GetLabels()) > 64 {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'labels': the resource has more than 64 labels")
		return
	}
	for k, v := range req.GetLabels() {
		if !labelKeyRE.MatchString(k) || !labelValueRE.MatchString(v) {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Invalid value for field 'labels': '%s'. Label keys and values must follow the label rules.", k))
			return
		}
	}
	if s.operation(w, r, "instances.setLabels", inst.GetSelfLink()) {
		return
	}
	inst.Labels = maps.Clone(req.GetLabels())
	inst.LabelFingerprint = proto.String(labelFingerprint(inst.Labels))
}

// SetLabelsOutOfBand changes an instance's labels as if someone ran gcloud (the fingerprint
// changes with them).
func (s *Server) SetLabelsOutOfBand(project, zone, name string, labels map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.instances[project+"/"+zone+"/"+name]
	inst.Labels = maps.Clone(labels)
	inst.LabelFingerprint = proto.String(labelFingerprint(inst.Labels))
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "/" + r.PathValue("zone") + "/" + r.PathValue("name")
	inst, ok := s.instances[key]
	if !ok {
		notFound(w, "projects/"+strings.ReplaceAll(key, "/"+r.PathValue("zone")+"/", "/zones/"+r.PathValue("zone")+"/instances/"))
		return
	}
	if !s.operation(w, r, "instances.delete", inst.GetSelfLink()) {
		delete(s.instances, key)
	}
}

var priorityDefault int32 = 1000

func (s *Server) insertFirewall(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	fw := &computepb.Firewall{}
	if !readResource(w, r, fw) {
		return
	}
	if _, ok := s.firewalls[project+"/"+fw.GetName()]; ok {
		alreadyExists(w, "projects/"+project+"/global/firewalls/"+fw.GetName())
		return
	}
	if n := resourcePath(fw.GetNetwork()); !s.networks[n] {
		notFound(w, n)
		return
	}
	if (len(fw.GetAllowed()) == 0) == (len(fw.GetDenied()) == 0) {
		writeError(w, http.StatusBadRequest, "invalid", "Exactly one of 'allowed' or 'denied' must be specified.")
		return
	}
	if fw.Priority == nil {
		fw.Priority = &priorityDefault
	}
	self := fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/global/firewalls/%s", project, fw.GetName())
	if !s.operation(w, r, "firewalls.insert", self) {
		fw.SelfLink = proto.String(self)
		s.firewalls[project+"/"+fw.GetName()] = fw
	}
}

// The list filter supports the form the driver uses: name eq "<RE2 matching the whole name>".
var filterRE = regexp.MustCompile(`^name eq "(.*)"$`)

func (s *Server) listFirewalls(w http.ResponseWriter, r *http.Request) {
	var match *regexp.Regexp
	if f := r.URL.Query().Get("filter"); f != "" {
		m := filterRE.FindStringSubmatch(f)
		if m == nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid list filter expression '"+f+"'.")
			return
		}
		var err error
		if match, err = regexp.Compile("^(?:" + m[1] + ")$"); err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid regular expression in filter: "+err.Error())
			return
		}
	}
	list := &computepb.FirewallList{}
	prefix := r.PathValue("project") + "/"
	for _, k := range slices.Sorted(maps.Keys(s.firewalls)) {
		fw := s.firewalls[k]
		if strings.HasPrefix(k, prefix) && (match == nil || match.MatchString(fw.GetName())) {
			list.Items = append(list.Items, fw)
		}
	}
	writeJSON(w, list)
}

// patchFirewall applies a JSON merge patch, as the API does: the fields the patch sets
// replace the rule's (lists whole); the name, network and direction cannot change.
func (s *Server) patchFirewall(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "/" + r.PathValue("name")
	fw, ok := s.firewalls[key]
	if !ok {
		notFound(w, "projects/"+r.PathValue("project")+"/global/firewalls/"+r.PathValue("name"))
		return
	}
	patch := &computepb.Firewall{}
	if !readResource(w, r, patch) {
		return
	}
	switch {
	case patch.Name != nil && patch.GetName() != fw.GetName():
		writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.name': the name of a firewall cannot be changed.")
		return
	case patch.Network != nil && resourcePath(patch.GetNetwork()) != resourcePath(fw.GetNetwork()):
		writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.network': the network of a firewall cannot be changed.")
		return
	case patch.Direction != nil && patch.GetDirection() != fw.GetDirection():
		writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.direction': the direction of a firewall cannot be changed.")
		return
	}
	next := proto.Clone(fw).(*computepb.Firewall)
	patch.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		next.ProtoReflect().Set(fd, v)
		return true
	})
	if len(patch.GetAllowed()) > 0 {
		next.Denied = nil
	}
	if len(patch.GetDenied()) > 0 {
		next.Allowed = nil
	}
	if (len(next.GetAllowed()) == 0) == (len(next.GetDenied()) == 0) {
		writeError(w, http.StatusBadRequest, "invalid", "Exactly one of 'allowed' or 'denied' must be specified.")
		return
	}
	if !s.operation(w, r, "firewalls.patch", fw.GetSelfLink()) {
		s.firewalls[key] = next
	}
}

// AddFirewallOutOfBand inserts a firewall rule as if someone created it in the console.
func (s *Server) AddFirewallOutOfBand(project string, fw *computepb.Firewall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firewalls[project+"/"+fw.GetName()] = fw
}

func (s *Server) deleteFirewall(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "/" + r.PathValue("name")
	fw, ok := s.firewalls[key]
	if !ok {
		notFound(w, "projects/"+r.PathValue("project")+"/global/firewalls/"+r.PathValue("name"))
		return
	}
	if !s.operation(w, r, "firewalls.delete", fw.GetSelfLink()) {
		delete(s.firewalls, key)
	}
}

func (s *Server) imageFromFamily(w http.ResponseWriter, r *http.Request) {
	img := s.newestInFamily(r.PathValue("project"), r.PathValue("family"))
	if img == nil {
		notFound(w, "projects/"+r.PathValue("project")+"/global/images/family/"+r.PathValue("family"))
		return
	}
	writeJSON(w, img)
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	img, ok := s.images[r.PathValue("project")+"/"+r.PathValue("name")]
	if !ok {
		notFound(w, "projects/"+r.PathValue("project")+"/global/images/"+r.PathValue("name"))
		return
	}
	writeJSON(w, img)
}

func (s *Server) insertImage(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	img := &computepb.Image{}
	if !readResource(w, r, img) {
		return
	}
	if _, ok := s.images[project+"/"+img.GetName()]; ok {
		alreadyExists(w, "projects/"+project+"/global/images/"+img.GetName())
		return
	}
	src := s.resolveImage(resourcePath(img.GetSourceImage()))
	if src == nil {
		notFound(w, resourcePath(img.GetSourceImage()))
		return
	}
	self := fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/global/images/%s", project, img.GetName())
	if !s.operation(w, r, "images.insert", self) {
		img.SelfLink = proto.String(self)
		img.Status = proto.String("READY")
		img.CreationTimestamp = proto.String("2026-01-02T03:04:05.000-08:00")
		img.DiskSizeGb = src.DiskSizeGb
		s.images[project+"/"+img.GetName()] = img
	}
}
