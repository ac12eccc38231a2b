variable "bucket_prefix" {
  description = "Prefix of the bucket names, which must be globally unique (for example `acme-backlot-prod`); the buckets are <prefix>-exports, <prefix>-backups and <prefix>-access-logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,47}[a-z0-9]$", var.bucket_prefix))
    error_message = "bucket_prefix must be 3-49 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
  }
}

variable "export_expiration_days" {
  description = "Exports (catalog and tenant data downloads) are deleted this many days after they are written."
  type        = number
  default     = 30

  validation {
    condition     = var.export_expiration_days >= 1
    error_message = "export_expiration_days must be at least 1."
  }
}

variable "backup_expiration_days" {
  description = "Backups are deleted this many days after they are written (they move to Glacier Instant Retrieval after 30)."
  type        = number
  default     = 365

  validation {
    condition     = var.backup_expiration_days > 30
    error_message = "backup_expiration_days must be more than 30 (the transition to Glacier Instant Retrieval)."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Overwritten or deleted object versions are kept this many days."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_expiration_days" {
  description = "S3 server access logs are kept this many days."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_expiration_days >= 90
    error_message = "access_log_expiration_days must be at least 90."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
