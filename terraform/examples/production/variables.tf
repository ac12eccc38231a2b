variable "account_id" {
  description = "AWS account the foundation is applied to; any other account is refused."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "region" {
  description = "AWS region of the foundation."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of this installation, prefixed to every resource (for example `backlot-prod`)."
  type        = string
  default     = "backlot-prod"
}

variable "base_domain" {
  description = "Base domain (BACKLOT_BASE_DOMAIN): the console at app.<domain>, portals at <slug>.<domain>."
  type        = string
}

variable "bucket_prefix" {
  description = "Globally unique prefix for the S3 bucket names (for example `acme-backlot-prod`)."
  type        = string
}

variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones instead of one per zone (cheaper, less resilient)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the cluster."
  type        = string
  default     = "1.34"
}

variable "cluster_public_access_cidrs" {
  description = "Ranges allowed to reach the Kubernetes API over the internet; empty keeps the endpoint private (reach it over VPN or from inside the VPC)."
  type        = list(string)
  default     = []
}

variable "cluster_admin_role_arns" {
  description = "IAM roles granted cluster-admin (for example the SSO administrator role)."
  type        = list(string)
  default     = []
}

variable "postgres_instance_class" {
  description = "RDS instance class of the shared PostgreSQL (control plane and tenant databases)."
  type        = string
  default     = "db.r6g.large"
}

variable "redis_node_type" {
  description = "ElastiCache node type of the Celery broker."
  type        = string
  default     = "cache.r7g.large"
}

variable "extra_secret_arns" {
  description = "More Secrets Manager secrets Backlot's role may read, such as the one holding BACKLOT_SECRET_KEY."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
