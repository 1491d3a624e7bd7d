# The parent module validates these; see ../variables.tf for what each means.
variable "name" {
  description = "The slot's name prefix, <pair name>-<slot>; the generation hash is appended."
  type        = string
}

variable "roles" {
  description = "The router's roles."
  type        = list(string)
}

variable "placement" {
  description = "Where the host runs: one of aws, gcp, azure or local, and its image."
  type = object({
    aws = optional(object({
      region           = string
      subnet_id        = string
      assign_public_ip = optional(bool, false)
    }))
    gcp = optional(object({
      project          = string
      zone             = string
      network          = optional(string, "default")
      subnetwork       = optional(string)
      assign_public_ip = optional(bool, false)
    }))
    azure = optional(object({
      subscription_id = string
      resource_group  = string
      location        = string
      subnet_id       = string
      zone            = optional(string)
    }))
    local = optional(object({
      state_root    = optional(string)
      isolation     = optional(string, "none")
      router_binary = optional(string)
    }))
    image = optional(string)
  })
}

variable "size" {
  description = "Size tier of a cloud host."
  type        = string
}

variable "dns_servers" {
  description = "Resolvers the router uses for service names."
  type        = list(string)
}

variable "egress" {
  description = "Extra outbound rules for the host."
  type = list(object({
    destination = string
    protocol    = string
    ports       = string
  }))
}

variable "tags" {
  description = "Tags or labels on every cloud object."
  type        = map(string)
}

variable "key_version" {
  description = "Bumped to re-provision the host with a fresh key."
  type        = number
}
