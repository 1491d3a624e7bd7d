package ztnaprovider

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Schema attributes that several resources declare alike, so that they read and behave the
// same everywhere.

func idAttribute(what string) schema.StringAttribute {
	return schema.StringAttribute{
		Computed:            true,
		MarkdownDescription: "Controller-assigned id of the " + what + ".",
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

func nameAttribute(what string) schema.StringAttribute {
	return schema.StringAttribute{
		Required:            true,
		MarkdownDescription: "Unique name of the " + what + ": letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 100 characters.",
		Validators:          []validator.String{validName},
	}
}

// rolesAttribute is a set of roles (routers', identities', or the ones a policy or service
// selects). Terraform merges repeated elements of a set before the provider sees the
// configuration, so a role written twice counts once; the description says so, since no
// plan-time check can see the repetition.
func rolesAttribute(description string, required bool) schema.SetAttribute {
	a := schema.SetAttribute{
		ElementType:         types.StringType,
		MarkdownDescription: description + " A role listed twice counts once.",
		Validators:          []validator.Set{setvalidator.ValueStringsAre(validRole)},
	}
	if required {
		a.Required = true
		a.Validators = append(a.Validators, setvalidator.SizeAtLeast(1))
	} else {
		// Optional with an empty default, so that state never has to tell null from empty.
		a.Optional, a.Computed = true, true
		a.Default = setdefault.StaticValue(types.SetValueMust(types.StringType, nil))
	}
	return a
}

func ttlDescription(what string) string {
	return "How long the " + what + " stays valid, as a duration in whole seconds (`30m`, `24h`; at most `720h`). " +
		"Defaults to the controller's default of `3h`."
}

// createOnlySecretAttribute is a secret the controller returns once, in the response that
// creates its object, and never again (it stores only a hash). Later plans keep it from state;
// an imported object has none.
func createOnlySecretAttribute(description, replaceHint string) schema.StringAttribute {
	return schema.StringAttribute{
		Computed:  true,
		Sensitive: true,
		MarkdownDescription: description + " **Null after `terraform import`**: the controller returns it only when " +
			"it creates the object and keeps only a hash of it, so it cannot be read back. " + replaceHint,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

// expiresAtAttribute is when a one-time secret stops being accepted; it is fixed at creation.
func expiresAtAttribute(what string) schema.StringAttribute {
	return schema.StringAttribute{
		Computed:            true,
		MarkdownDescription: "When the " + what + " stops being accepted (RFC 3339).",
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
}

// failureDomainFormat is the one format of failure domains, whether a ztna_router_host computes
// it from the platform or a router reads it from instance metadata (cloud.FailureDomain).
const failureDomainFormat = "`cloud/region/zone`, e.g. `aws/eu-west-1/eu-west-1b`, `gcp/europe-west1/europe-west1-b`, " +
	"`azure/westeurope/2` (`azure/westeurope/` without a zone), `local/<machine>/<host name>`"
