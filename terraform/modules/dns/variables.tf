variable "domain_name" {
  description = "Base domain (BACKLOT_BASE_DOMAIN): the control plane and every `<slug>.<domain>` portal live under it."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS name without a trailing dot, such as backlot.example.com."
  }
}

variable "enable_dnssec" {
  description = "Sign the zone with DNSSEC. After the first apply, publish the `ds_record` output at the parent zone or registrar."
  type        = bool
  default     = true
}

variable "query_log_retention_days" {
  description = "How long Route53 query logs are kept in CloudWatch Logs (us-east-1)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.query_log_retention_days)
    error_message = "query_log_retention_days must be a CloudWatch Logs retention of at least one year (365, 400, 545, 731, ...)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
