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
  # One element of the parent's placements, already typed, defaulted and validated there.
  description = "Where the host runs: one of aws, gcp, azure or local, and its image."
  type        = any
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
