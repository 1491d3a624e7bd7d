package main

import (
	"slices"

	"github.com/ztna/ztna/internal/api"
	"github.com/ztna/ztna/router/daemon"
	"github.com/ztna/ztna/router/preflight"
)

// learned is what the controller pushed that a router keeps in its state directory
// (daemon.EndpointsFile, daemon.HubsFile), for status and preflight.
type learned struct {
	control, fabric []string
	errors          []string // saved lists the router ignores, and why
}

func loadLearned(dir string, cfg api.EnrolledConfig) learned {
	var l learned
	var err error
	if l.control, err = daemon.LearnedControl(dir, cfg); err != nil {
		l.errors = append(l.errors, err.Error())
	}
	if l.fabric, err = daemon.LearnedHubs(dir, cfg); err != nil {
		l.errors = append(l.errors, err.Error())
	}
	return l
}

// dialled lists the control and fabric endpoints a router started on the state directory dials:
// the learned control endpoints, then the enrolled ones they lack; the learned hubs, else the
// enrolled ones (as router/daemon does).
func (l learned) dialled(cfg api.EnrolledConfig) []preflight.Endpoint {
	var eps []preflight.Endpoint
	add := func(plane, source string, addrs []string) {
		for _, a := range addrs {
			eps = append(eps, preflight.Endpoint{Plane: plane, Addr: a, Source: source})
		}
	}
	add(preflight.PlaneControl, preflight.SourceLearned, l.control)
	add(preflight.PlaneControl, preflight.SourceEnrolled, slices.DeleteFunc(slices.Clone(cfg.Control), func(a string) bool { return slices.Contains(l.control, a) }))
	if len(l.fabric) > 0 {
		add(preflight.PlaneFabric, preflight.SourceLearned, l.fabric)
	} else {
		add(preflight.PlaneFabric, preflight.SourceEnrolled, cfg.Fabric)
	}
	return eps
}
