output "control_plane_role_arn" {
  description = "IRSA role for Backlot's service account: annotate it with eks.amazonaws.com/role-arn (Helm serviceAccount.annotations)."
  value       = aws_iam_role.this["control-plane"].arn
}

output "external_dns_role_arn" {
  description = "IRSA role for external-dns, or null when disabled."
  value       = var.enable_external_dns ? aws_iam_role.this["external-dns"].arn : null
}

output "cert_manager_role_arn" {
  description = "IRSA role for cert-manager's Route53 DNS-01 solver, or null when disabled."
  value       = var.enable_cert_manager ? aws_iam_role.this["cert-manager"].arn : null
}
