variable "name" {
  description = "Name of the EKS cluster."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}$", var.name))
    error_message = "name must be 2-39 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the node groups (for example `1.34`)."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.34."
  }
}

variable "subnet_ids" {
  description = "Private subnets (one per zone) for the control-plane network interfaces and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API on a public address as well as inside the VPC. Off by default; when on, public_access_cidrs must list who may reach it."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Address ranges allowed to reach the public API endpoint when it is enabled. Never 0.0.0.0/0."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be IPv4 CIDRs and must not include 0.0.0.0/0."
  }
}

variable "admin_role_arns" {
  description = "IAM roles (for example an SSO administrator role) granted cluster-admin through EKS access entries."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "How long control-plane logs are kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "control_plane_nodes" {
  description = "Size of the `control-plane` node group, which runs Backlot's web, workers, beat and the cluster add-ons."
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gib  = optional(number, 50)
  })
  default = {
    instance_types = ["m6i.large"]
    min_size       = 3
    desired_size   = 3
    max_size       = 6
  }

  validation {
    condition     = var.control_plane_nodes.min_size >= 1 && var.control_plane_nodes.min_size <= var.control_plane_nodes.desired_size && var.control_plane_nodes.desired_size <= var.control_plane_nodes.max_size
    error_message = "control_plane_nodes needs 1 <= min_size <= desired_size <= max_size."
  }
}

variable "tenant_nodes" {
  description = "Size of the `tenants` node group, tainted so that only tenant runtimes schedule there."
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gib  = optional(number, 50)
  })
  default = {
    instance_types = ["m6i.xlarge"]
    min_size       = 3
    desired_size   = 3
    max_size       = 20
  }

  validation {
    condition     = var.tenant_nodes.min_size >= 0 && var.tenant_nodes.min_size <= var.tenant_nodes.desired_size && var.tenant_nodes.desired_size <= var.tenant_nodes.max_size
    error_message = "tenant_nodes needs 0 <= min_size <= desired_size <= max_size."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
