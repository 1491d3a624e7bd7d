package catalog

import (
	"fmt"
	"reflect"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"
)

// gcpImageProject is the project a googlecompute artifact's image is in (image_project_id when
// set, else project_id), as the builder reports it for HCP Packer: the project_id label of its
// "par.artifact.metadata" state, else the project in its self_link label. In process the state
// is a *registryimage.Image; across the plugin RPC (msgpack) it arrives as nested maps. Empty
// when the artifact reports neither.
func gcpImageProject(a packersdk.Artifact) string {
	var labels map[string]string
	switch md := a.State(registryimage.ArtifactStateURI).(type) {
	case *registryimage.Image:
		labels = md.Labels
	case registryimage.Image:
		labels = md.Labels
	default:
		labels = stringMap(mapField(md, "Labels"))
	}
	if p := labels["project_id"]; p != "" {
		return p
	}
	// https://www.googleapis.com/compute/v1/projects/<project>/global/images/<name>
	if _, rest, ok := strings.Cut(labels["self_link"], "/projects/"); ok {
		project, _, _ := strings.Cut(rest, "/")
		return project
	}
	return ""
}

// mapField is m[key] for a map of any key type whose keys print as strings.
func mapField(m any, key string) any {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Map {
		return nil
	}
	for it := v.MapRange(); it.Next(); {
		if asString(it.Key().Interface()) == key {
			return it.Value().Interface()
		}
	}
	return nil
}

// stringMap turns a map of string-like keys and values into a map[string]string.
func stringMap(m any) map[string]string {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Map {
		return nil
	}
	out := map[string]string{}
	for it := v.MapRange(); it.Next(); {
		out[asString(it.Key().Interface())] = asString(it.Value().Interface())
	}
	return out
}

// asString is a msgpack string, which may decode as []byte.
func asString(x any) string {
	switch s := x.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case nil:
		return ""
	}
	return fmt.Sprint(x)
}
