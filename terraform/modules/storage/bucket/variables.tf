variable "name" {
  description = "Globally unique bucket name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be 3-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS default encryption."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving this bucket's server access logs (under `<name>/`)."
  type        = string
}

variable "expiration_days" {
  description = "Current objects are deleted this many days after they are written."
  type        = number

  validation {
    condition     = var.expiration_days >= 1
    error_message = "expiration_days must be at least 1."
  }
}

variable "glacier_transition_days" {
  description = "Move objects to Glacier Instant Retrieval after this many days; null keeps them in Standard."
  type        = number
  default     = null

  validation {
    condition     = var.glacier_transition_days == null || try(var.glacier_transition_days >= 30, false)
    error_message = "glacier_transition_days must be null or at least 30."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Overwritten or deleted object versions are kept this many days."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
