# Amazon EBS-backed AMI, provisioned with Ansible.

variable "region" { type = string }
variable "source_ami" {
  type        = string
  default     = ""
  description = "A concrete AMI id; when empty, source_ami_filter_* select one."
}
variable "source_ami_filter_name" {
  type    = string
  default = ""
}
variable "source_ami_filter_owners" {
  type    = list(string)
  default = []
}
variable "source_ami_most_recent" {
  type    = bool
  default = true
}
variable "instance_type" { type = string }
variable "subnet_id" {
  type    = string
  default = ""
}
variable "vpc_id" {
  type    = string
  default = ""
}
variable "security_group_ids" {
  type    = list(string)
  default = []
}
variable "iam_instance_profile" {
  type    = string
  default = ""
}
variable "encrypt_boot" {
  type    = bool
  default = true
}
variable "kms_key_id" {
  type    = string
  default = ""
}
variable "volume_size" {
  type    = number
  default = 8
}
variable "ssh_username" {
  type    = string
  default = "admin"
}
variable "ssh_interface" {
  type    = string
  default = "public_ip"
}
variable "ami_regions" {
  type    = list(string)
  default = []
}
variable "ami_users" {
  type    = list(string)
  default = []
}
variable "custom_endpoint_ec2" {
  type        = string
  default     = ""
  description = "Private or test EC2 endpoint; empty for AWS's own."
}
variable "ami_name" {
  type        = string
  description = "IMAGE-VERSION-INVOCATION: the bake's mark, there from the moment the AMI exists."
}
variable "build_tags" {
  type        = map(string)
  default     = {}
  description = "bakery's marks while a bake is under way (state = pending); final provenance tags come after."
}
variable "communicator" {
  type        = string
  default     = "ssh"
  description = "'ssh' for real bakes; 'none' registers the AMI without provisioning (API-level tests)."
}

source "amazon-ebs" "image" {
  region        = var.region
  source_ami    = var.source_ami
  instance_type = var.instance_type

  source_ami_filter {
    filters = var.source_ami_filter_name == "" ? {} : {
      name                  = var.source_ami_filter_name
      "root-device-type"    = "ebs"
      "virtualization-type" = "hvm"
    }
    owners      = var.source_ami_filter_owners
    most_recent = var.source_ami_most_recent
  }

  subnet_id            = var.subnet_id
  vpc_id               = var.vpc_id
  security_group_ids   = var.security_group_ids
  iam_instance_profile = var.iam_instance_profile
  custom_endpoint_ec2  = var.custom_endpoint_ec2
  # A private endpoint has no STS beside it to validate credentials against.
  skip_credential_validation = var.custom_endpoint_ec2 != ""

  communicator  = var.communicator
  ssh_username  = var.ssh_username
  ssh_interface = var.ssh_interface

  # bakery:packer>=1.7 (IMDSv2 settings are unknown to Packer 1.6; bakery drops this part there)
  # IMDSv2 only, on the build instance and on instances launched from the AMI.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"
  # bakery:end

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.volume_size
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  ami_name        = var.ami_name
  ami_description = var.image_description
  ami_regions     = var.ami_regions
  ami_users       = var.ami_users
  encrypt_boot    = var.encrypt_boot
  kms_key_id      = var.kms_key_id
  tags            = merge(var.image_tags, var.build_tags)
  snapshot_tags   = merge(var.image_tags, var.build_tags)
  run_tags        = merge(var.image_tags, { Name = "bakery-build-${var.image_name}" })
}

build {
  sources = ["source.amazon-ebs.image"]

  # bakery:provision (left out for targets with communicator: none)
  provisioner "ansible" {
    playbook_file = "${path.root}/ansible/site.yml"
    user          = var.ssh_username
    use_proxy     = false
    galaxy_file   = var.galaxy_file == "" ? "" : "${path.root}/ansible/${var.galaxy_file}"
    extra_arguments = [
      "--extra-vars", var.ansible_extra_vars,
      # Secrets: names only; values come from ansible-playbook's environment (BAKERY_SECRET_*).
      "--extra-vars", "@${path.root}/ansible/bakery-secrets.yml",
    ]
    # Pipelining: a module and its arguments (a secret a task uses) reach the VM on stdin, not in a file.
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_PIPELINING=True"]
  }

  # The package database, for the image's SBOM (bakery sbom): read after Ansible, before the image is made.
  provisioner "file" {
    direction   = "download"
    source      = "/var/lib/dpkg/status"
    destination = "${path.root}/sbom-dpkg-status"
  }

  provisioner "file" {
    direction   = "download"
    source      = "/etc/os-release"
    destination = "${path.root}/sbom-os-release"
  }

  provisioner "shell" {
    execute_command = "sudo -S sh -eu '{{ .Path }}'"
    script          = "${path.root}/scripts/hygiene.sh"
  }
  # bakery:end

  post-processor "manifest" {
    output = "${path.root}/packer-manifest.json"
  }
}
