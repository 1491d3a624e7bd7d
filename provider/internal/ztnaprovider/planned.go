package ztnaprovider

import "sync"

// plannedObjects records, for one Terraform run (one provider process), the names of the
// services and the roles of the identities that the run plans to have. A policy that
// references a ztna_service or depends on a ztna_identity is planned after it, so its
// plan-time check can count what this run creates, not only what the controller has now.
type plannedObjects struct {
	mu            sync.Mutex
	services      map[string]bool
	identityRoles map[string]bool
}

func (p *plannedObjects) addService(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.services == nil {
		p.services = map[string]bool{}
	}
	p.services[name] = true
}

func (p *plannedObjects) addIdentityRoles(roles []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.identityRoles == nil {
		p.identityRoles = map[string]bool{}
	}
	for _, r := range roles {
		p.identityRoles[r] = true
	}
}

func (p *plannedObjects) hasService(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.services[name]
}

func (p *plannedObjects) hasIdentityRole(role string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.identityRoles[role]
}
