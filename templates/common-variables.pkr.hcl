# Variables every bakery template shares. Values come from bakery.auto.pkrvars.hcl, which
# bakery writes with python-hcl2; edit images.yaml rather than that file.

variable "image_name" {
  type        = string
  description = "Name of the image in images.yaml."
}

variable "image_version" {
  type        = string
  description = "MAJOR.MINOR.PATCH of this bake."
}

variable "image_description" {
  type    = string
  default = ""
}

variable "image_tags" {
  type        = map(string)
  default     = {}
  description = "Tags/labels from images.yaml; provenance is added by bakery after the build."
}

variable "ansible_extra_vars" {
  type        = string
  default     = "{}"
  description = "JSON object of the image's Ansible variables."
}

variable "galaxy_file" {
  type        = string
  default     = ""
  description = "Ansible Galaxy requirements, relative to ansible/ (empty: none)."
}
