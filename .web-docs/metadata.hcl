# Integration metadata for the Packer integrations portal; scripts/packer-docs.sh copies it to
# .web-docs/metadata.hcl beside the rendered component docs.
integration {
  name        = "ztna"
  description = "Bake hardened ztna router images, record them in an image catalog and promote them between environments."
  identifier  = "packer/ztna/ztna"
  component {
    type = "builder"
    name = "ztna-local"
    slug = "local"
  }
  component {
    type = "provisioner"
    name = "ztna-router"
    slug = "router"
  }
  component {
    type = "data-source"
    name = "ztna-base-image"
    slug = "base-image"
  }
  component {
    type = "post-processor"
    name = "ztna-catalog"
    slug = "catalog"
  }
}
