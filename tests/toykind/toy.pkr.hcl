# The toy kind's Packer template. The stand-in packer of the unit tests does not read it; a real
# toy builder would take these variables (common-variables.pkr.hcl declares the common ones).
variable "shelf" { type = string }
variable "oven" { type = number }
variable "dough" { type = string }
variable "bake_id" { type = string }
