variable "name" {
  description = "Identifier of the RDS instance and prefix of its companions (for example `backlot-prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,50}$", var.name))
    error_message = "name must be 2-51 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the database and its security group live in."
  type        = string
}

variable "subnet_ids" {
  description = "Database subnets (one per zone, no internet route) for the DB subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "A multi-AZ database needs subnets in at least two zones."
  }
}

variable "client_security_group_id" {
  description = "The only security group allowed to connect: the EKS node security group."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version (major.minor); minor upgrades are applied automatically in the maintenance window."
  type        = string
  default     = "16.4"

  validation {
    condition     = can(regex("^1[4-9]\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 14 or newer, as major.minor (for example 16.4)."
  }
}

variable "instance_class" {
  description = "RDS instance class; it hosts the control-plane database and every tenant database."
  type        = string
  default     = "db.r6g.large"
}

variable "allocated_storage_gib" {
  description = "Initial gp3 storage."
  type        = number
  default     = 100

  validation {
    condition     = var.allocated_storage_gib >= 20
    error_message = "allocated_storage_gib must be at least 20."
  }
}

variable "max_allocated_storage_gib" {
  description = "Ceiling for storage autoscaling."
  type        = number
  default     = 1000
}

variable "database_name" {
  description = "Database created for the control plane (BACKLOT_DATABASE_URL)."
  type        = string
  default     = "backlot"
}

variable "master_username" {
  description = "Master user; RDS keeps its password in Secrets Manager. It has CREATEDB and CREATEROLE."
  type        = string
  default     = "backlot_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must be a lowercase PostgreSQL identifier and not a reserved name."
  }
}

variable "app_username" {
  description = "Role the control plane connects as (BACKLOT_DATABASE_URL); owns database_name once bootstrapped."
  type        = string
  default     = "backlot"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.app_username))
    error_message = "app_username must be a lowercase PostgreSQL identifier."
  }
}

variable "tenant_admin_username" {
  description = "Role with CREATEDB and CREATEROLE that creates tenant databases (BACKLOT_TENANT_DATABASE_ADMIN_URL)."
  type        = string
  default     = "backlot_tenants"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.tenant_admin_username))
    error_message = "tenant_admin_username must be a lowercase PostgreSQL identifier."
  }
}

variable "multi_az" {
  description = "Keep a synchronous standby in another zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "How many days of automated backups (point-in-time recovery) to keep."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "How long PostgreSQL logs exported to CloudWatch Logs are kept."
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
