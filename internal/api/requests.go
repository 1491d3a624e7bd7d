package api

import "fmt"

// Validate checks a router create request.
func (r *RouterCreate) Validate() error {
	var fe FieldErrors
	fe.Add("name", ValidateName(r.Name))
	ValidateRoles(&fe, "roles", r.Roles)
	fe.Add("cost", ValidateCost(r.Cost))
	return fe.Err()
}

// Validate checks the fields a router update sets.
func (r *RouterUpdate) Validate() error {
	var fe FieldErrors
	if r.Name != nil {
		fe.Add("name", ValidateName(*r.Name))
	}
	if r.Roles != nil {
		ValidateRoles(&fe, "roles", *r.Roles)
	}
	if r.Cost != nil {
		fe.Add("cost", ValidateCost(*r.Cost))
	}
	return fe.Err()
}

// Validate checks a registration key create request.
func (r *RegistrationKeyCreate) Validate() error {
	var fe FieldErrors
	if r.RouterID == "" {
		fe.Add("router_id", fmt.Errorf("must name the router the key enrols"))
	}
	fe.Add("ttl_seconds", ValidateTTLSeconds(r.TTLSeconds))
	return fe.Err()
}

// Validate checks a service create request.
func (r *ServiceCreate) Validate() error {
	var fe FieldErrors
	fe.Add("name", ValidateName(r.Name))
	fe.Add("address", ValidateAddress(r.Address))
	fe.Add("port", ValidatePort(r.Port))
	for i, pr := range r.PortRanges {
		fe.Add(fmt.Sprintf("port_ranges[%d]", i), ValidatePortRange(pr))
	}
	if r.Protocol != "" {
		fe.Add("protocol", ValidateProtocol(r.Protocol))
	}
	ValidateRoles(&fe, "router_roles", r.RouterRoles)
	return fe.Err()
}

// Validate checks the fields a service update sets.
func (r *ServiceUpdate) Validate() error {
	var fe FieldErrors
	if r.Name != nil {
		fe.Add("name", ValidateName(*r.Name))
	}
	if r.Address != nil {
		fe.Add("address", ValidateAddress(*r.Address))
	}
	if r.Port != nil {
		fe.Add("port", ValidatePort(*r.Port))
	}
	if r.PortRanges != nil {
		for i, pr := range *r.PortRanges {
			fe.Add(fmt.Sprintf("port_ranges[%d]", i), ValidatePortRange(pr))
		}
	}
	if r.Protocol != nil {
		fe.Add("protocol", ValidateProtocol(*r.Protocol))
	}
	if r.RouterRoles != nil {
		ValidateRoles(&fe, "router_roles", *r.RouterRoles)
	}
	return fe.Err()
}

// Validate checks an identity create request.
func (r *IdentityCreate) Validate() error {
	var fe FieldErrors
	fe.Add("name", ValidateName(r.Name))
	ValidateRoles(&fe, "roles", r.Roles)
	fe.Add("token_ttl_seconds", ValidateTTLSeconds(r.TokenTTLSeconds))
	return fe.Err()
}

// Validate checks an enrolment token reissue request.
func (r *IdentityTokenReissue) Validate() error {
	var fe FieldErrors
	fe.Add("token_ttl_seconds", ValidateTTLSeconds(r.TokenTTLSeconds))
	return fe.Err()
}

// Validate checks the fields an identity update sets.
func (r *IdentityUpdate) Validate() error {
	var fe FieldErrors
	if r.Name != nil {
		fe.Add("name", ValidateName(*r.Name))
	}
	if r.Roles != nil {
		ValidateRoles(&fe, "roles", *r.Roles)
	}
	return fe.Err()
}

// Validate checks a service policy create request.
func (r *ServicePolicyCreate) Validate() error {
	var fe FieldErrors
	fe.Add("name", ValidateName(r.Name))
	ValidateRoles(&fe, "identity_roles", r.IdentityRoles)
	ValidateNames(&fe, "service_names", r.ServiceNames)
	return fe.Err()
}

// Validate checks the fields a service policy update sets.
func (r *ServicePolicyUpdate) Validate() error {
	var fe FieldErrors
	if r.Name != nil {
		fe.Add("name", ValidateName(*r.Name))
	}
	if r.IdentityRoles != nil {
		ValidateRoles(&fe, "identity_roles", *r.IdentityRoles)
	}
	if r.ServiceNames != nil {
		ValidateNames(&fe, "service_names", *r.ServiceNames)
	}
	return fe.Err()
}

// Validate checks that an enrol request carries a key and a CSR.
func (r *EnrollRequest) Validate() error {
	var fe FieldErrors
	if r.Key == "" {
		fe.Add("key", fmt.Errorf("must carry the registration key or enrolment token"))
	}
	if r.CSR == "" {
		fe.Add("csr", fmt.Errorf("must carry a PEM certificate signing request"))
	}
	return fe.Err()
}

// Validate checks that the request carries a CSR.
func (r *RenewRequest) Validate() error {
	var fe FieldErrors
	if r.CSR == "" {
		fe.Add("csr", fmt.Errorf("must carry a PEM certificate signing request for the new key"))
	}
	return fe.Err()
}
