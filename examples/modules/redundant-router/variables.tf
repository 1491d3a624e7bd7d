variable "name" {
  description = "Prefix of the routers' and hosts' names: <name>-a-<generation> and <name>-b-<generation>, the generation a 6-character hash of what replaces the host (image, size, placement, key_version), so that a replacement and the host it replaces never share a name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name must be 1-31 lower-case letters, digits and -, starting with a letter: the hosts' names add 9 characters and a host name has at most 40."
  }
}

variable "roles" {
  description = "Roles both routers share: every service whose router_roles include one is hosted by both."
  type        = list(string)
}

variable "placements" {
  description = <<-EOT
    Where the two hosts run: exactly two entries, each with one platform (aws, gcp, azure or
    local). Put them in distinct failure domains — two zones, two regions or two clouds — so the
    routers' services survive the loss of one.
  EOT
  type = list(object({
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
  }))

  validation {
    condition     = length(var.placements) == 2
    error_message = "placements needs exactly two entries, one per router host."
  }
  validation {
    condition = alltrue([for p in var.placements :
    length([for v in [p.aws, p.gcp, p.azure, p.local] : v if v != null]) == 1])
    error_message = "Each placement needs exactly one of aws, gcp, azure or local."
  }
}

variable "size" {
  description = "Size tier of cloud hosts: low-med, med or high (see ztna_router_sizing)."
  type        = string
  default     = "low-med"
}

variable "dns_servers" {
  description = "Resolvers the routers use for service names (IP or IP:port)."
  type        = list(string)
  default     = null
}

variable "egress" {
  description = "Extra outbound rules for both hosts."
  type = list(object({
    destination = string
    protocol    = optional(string, "tcp")
    ports       = string
  }))
  default = []
}

variable "tags" {
  description = "Tags or labels on every cloud object."
  type        = map(string)
  default     = null
}

variable "key_version" {
  description = "Bump to re-provision both hosts with fresh registration keys (one at a time, like an image change)."
  type        = number
  default     = 1
}
