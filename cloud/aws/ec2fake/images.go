package ec2fake

import (
	"net/http"
	"net/url"
	"slices"
)

// Snapshot is an EBS snapshot. CreateVolumeUsers are the accounts granted createVolumePermission:
// what another account needs, besides the image's launch permission, to CopyImage an AMI.
type Snapshot struct {
	ID, Owner         string
	VolumeGiB         int
	Encrypted         bool
	KMSKeyID          string // empty with Encrypted: the AWS-managed key (aws/ebs)
	CreateVolumeUsers []string
	Tags              map[string]string
}

// snapshotHandlers are the snapshot calls, served next to handlers.
var snapshotHandlers = map[string]handler{
	"ModifySnapshotAttribute": (*Server).modifySnapshotAttribute,
	"DescribeSnapshots":       (*Server).describeSnapshots,
}

// visibleImages are the images of this region the caller may see: its own, the ones it has
// launch permission on, and public ones.
func (s *Server) visibleImages() map[string]*Image {
	out := map[string]*Image{}
	for id, img := range s.images {
		if s.canLaunch(img) {
			out[id] = img
		}
	}
	return out
}

func (s *Server) canLaunch(img *Image) bool {
	return img.Owner == s.caller || img.Public || slices.Contains(img.LaunchUsers, s.caller)
}

func (s *Server) canCreateVolume(sn *Snapshot) bool {
	return sn.Owner == s.caller || slices.Contains(sn.CreateVolumeUsers, s.caller)
}

func notAuthorized(resource string) *apiErr {
	return &apiErr{http.StatusForbidden, "AuthFailure", "Not authorized for " + resource}
}

// copyImage copies an image the caller may launch into this region and the caller's account.
// Like EC2 it refuses when the caller lacks createVolumePermission on any of the source's
// snapshots (sharing the AMI alone is not enough), and the copy's snapshots are new ones of the
// caller, tagged with the request's "snapshot" tag specification.
func (s *Server) copyImage(v url.Values) (any, *apiErr) {
	region, srcID := v.Get("SourceRegion"), v.Get("SourceImageId")
	src := s.foreign[region][srcID]
	if region == s.Region {
		src = s.images[srcID]
	}
	if src == nil || !s.canLaunch(src) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist in %s", srcID, region)
	}
	for _, id := range src.Snapshots {
		if !s.canCreateVolume(s.snapshots[id]) {
			return nil, errf("InvalidRequest", "You do not have permission to access the storage of this ami")
		}
	}
	for _, img := range s.images {
		if img.Owner == s.caller && img.Name == v.Get("Name") {
			return nil, errf("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", img.Name, img.ID)
		}
	}
	img := &Image{
		ID: s.nextID("ami"), Name: v.Get("Name"), Owner: s.caller, Created: "2026-01-02T03:04:05.000Z",
		RootDevice: src.RootDevice, Architecture: src.Architecture, State: "pending",
		SourceRegion: region, SourceImageID: srcID, Tags: tagSpec(v, "image"),
	}
	for _, id := range src.Snapshots {
		from := s.snapshots[id]
		sn := &Snapshot{ID: s.nextID("snap"), Owner: s.caller, VolumeGiB: from.VolumeGiB, Tags: tagSpec(v, "snapshot"),
			Encrypted: from.Encrypted || v.Get("Encrypted") == "true", KMSKeyID: from.KMSKeyID}
		if k := v.Get("KmsKeyId"); k != "" {
			sn.KMSKeyID = k
		}
		s.snapshots[sn.ID] = sn
		img.Snapshots = append(img.Snapshots, sn.ID)
	}
	s.images[img.ID] = img
	type out struct {
		ImageID string `xml:"imageId"`
	}
	return out{img.ID}, nil
}

// modifyImageAttribute changes launch permissions; only the owner may.
func (s *Server) modifyImageAttribute(v url.Values) (any, *apiErr) {
	img, ok := s.images[v.Get("ImageId")]
	if !ok || !s.canLaunch(img) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", v.Get("ImageId"))
	}
	if img.Owner != s.caller {
		return nil, notAuthorized("image:" + img.ID)
	}
	add, remove := permissionUsers(v, "LaunchPermission")
	img.LaunchUsers = changeUsers(img.LaunchUsers, add, remove)
	return returnX{true}, nil
}

// modifySnapshotAttribute changes createVolumePermission; only the owner may, and a snapshot
// encrypted with the AWS-managed key cannot be shared at all.
func (s *Server) modifySnapshotAttribute(v url.Values) (any, *apiErr) {
	sn, ok := s.snapshots[v.Get("SnapshotId")]
	if !ok || !s.canCreateVolume(sn) {
		return nil, errf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", v.Get("SnapshotId"))
	}
	if sn.Owner != s.caller {
		return nil, notAuthorized("snapshot:" + sn.ID)
	}
	if a := v.Get("Attribute"); a != "" && a != "createVolumePermission" {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid", a)
	}
	add, remove := permissionUsers(v, "CreateVolumePermission")
	if len(add) > 0 && sn.Encrypted && sn.KMSKeyID == "" {
		return nil, errf("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
	}
	sn.CreateVolumeUsers = changeUsers(sn.CreateVolumeUsers, add, remove)
	return returnX{true}, nil
}

// permissionUsers reads the accounts a Modify*Attribute call adds and removes, in both
// encodings: <attr>.Add.N.UserId / .Remove.N.UserId, and OperationType with UserId.N.
func permissionUsers(v url.Values, attr string) (add, remove []string) {
	for _, p := range members(v, attr+".Add") {
		add = append(add, p.Get("UserId"))
	}
	for _, p := range members(v, attr+".Remove") {
		remove = append(remove, p.Get("UserId"))
	}
	switch v.Get("OperationType") {
	case "add":
		add = append(add, list(v, "UserId")...)
	case "remove":
		remove = append(remove, list(v, "UserId")...)
	}
	return add, remove
}

func changeUsers(users, add, remove []string) []string {
	for _, u := range add {
		if u != "" && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	return slices.DeleteFunc(users, func(u string) bool { return slices.Contains(remove, u) })
}

type snapshotX struct {
	SnapshotID string `xml:"snapshotId"`
	OwnerID    string `xml:"ownerId"`
	VolumeGiB  int    `xml:"volumeSize"`
	Encrypted  bool   `xml:"encrypted"`
	KMSKeyID   string `xml:"kmsKeyId,omitempty"`
	Status     string `xml:"status"`
	Tags       []tagX `xml:"tagSet>item"`
}

// describeSnapshots lists the snapshots the caller may use (own and shared with it).
func (s *Server) describeSnapshots(v url.Values) (any, *apiErr) {
	visible := map[string]*Snapshot{}
	for id, sn := range s.snapshots {
		if s.canCreateVolume(sn) {
			visible[id] = sn
		}
	}
	snaps, err := describe(visible, list(v, "SnapshotId"), "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.")
	if err != nil {
		return nil, err
	}
	type out struct {
		Snapshots []snapshotX `xml:"snapshotSet>item"`
	}
	var o out
	for _, sn := range snaps {
		if !matchFilters(filters(v), sn.Tags, map[string]string{"owner-id": sn.Owner}) {
			continue
		}
		o.Snapshots = append(o.Snapshots, snapshotX{sn.ID, sn.Owner, sn.VolumeGiB, sn.Encrypted, sn.KMSKeyID, "completed", tagsX(sn.Tags)})
	}
	return o, nil
}
