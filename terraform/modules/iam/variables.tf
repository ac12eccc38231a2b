variable "name" {
  description = "Prefix of the role names (for example `backlot-prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,40}$", var.name))
    error_message = "name must be 2-41 letters, digits or hyphens, starting with a letter."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (eks module output)."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without `https://` (eks module output)."
  type        = string

  validation {
    condition     = !startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must not include the scheme."
  }
}

variable "control_plane_namespace" {
  description = "Namespace Backlot's control plane runs in (BACKLOT_KUBE_CONTROL_PLANE_NAMESPACE)."
  type        = string
  default     = "backlot"
}

variable "control_plane_service_account" {
  description = "Service account of Backlot's web, worker and beat pods (the Helm chart's serviceAccount.name)."
  type        = string
  default     = "backlot"
}

variable "bucket_arns" {
  description = "Buckets the control plane reads and writes (exports, backups)."
  type        = list(string)

  validation {
    condition     = alltrue([for arn in var.bucket_arns : startswith(arn, "arn:") && !strcontains(arn, "*")])
    error_message = "bucket_arns must be bucket ARNs without wildcards."
  }
}

variable "secret_arns" {
  description = "Secrets Manager secrets the control plane may read (database master secret, Redis auth token, ...)."
  type        = list(string)

  validation {
    condition     = alltrue([for arn in var.secret_arns : !strcontains(arn, "*")])
    error_message = "secret_arns must name secrets, without wildcards."
  }
}

variable "kms_key_arns" {
  description = "KMS keys protecting those buckets and secrets; the control plane may use them to encrypt and decrypt data keys only."
  type        = list(string)
}

variable "enable_external_dns" {
  description = "Create the IRSA role for external-dns (kube-system/external-dns by default) managing records in the hosted zone."
  type        = bool
  default     = true
}

variable "external_dns_service_account" {
  description = "namespace/name of external-dns's service account."
  type        = string
  default     = "external-dns/external-dns"

  validation {
    condition     = can(regex("^[a-z0-9-]+/[a-z0-9-]+$", var.external_dns_service_account))
    error_message = "external_dns_service_account must be namespace/name."
  }
}

variable "enable_cert_manager" {
  description = "Create the IRSA role for cert-manager solving ACME DNS-01 challenges in the hosted zone."
  type        = bool
  default     = true
}

variable "cert_manager_service_account" {
  description = "namespace/name of cert-manager's service account."
  type        = string
  default     = "cert-manager/cert-manager"

  validation {
    condition     = can(regex("^[a-z0-9-]+/[a-z0-9-]+$", var.cert_manager_service_account))
    error_message = "cert_manager_service_account must be namespace/name."
  }
}

variable "hosted_zone_arn" {
  description = "Route53 hosted zone external-dns and cert-manager may change (dns module output); required when either is enabled."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
