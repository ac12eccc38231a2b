variable "name" {
  description = "Replication group identifier and prefix of its companions (for example `backlot-prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,33}$", var.name))
    error_message = "name must be 2-34 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the cache and its security group live in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (one per zone) for the cache subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Multi-AZ Redis needs subnets in at least two zones."
  }
}

variable "client_security_group_id" {
  description = "The only security group allowed to connect: the EKS node security group."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^[67]\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be Redis 6.x or 7.x, as major.minor."
  }
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "replicas" {
  description = "Number of cache nodes (a primary and its replicas), spread over the zones."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 2 && var.replicas <= 6
    error_message = "replicas must be between 2 and 6: automatic failover needs a replica."
  }
}

variable "snapshot_retention_days" {
  description = "How many daily snapshots to keep."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_retention_days >= 1 && var.snapshot_retention_days <= 35
    error_message = "snapshot_retention_days must be between 1 and 35."
  }
}

variable "log_retention_days" {
  description = "How long the slow log is kept in CloudWatch Logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
