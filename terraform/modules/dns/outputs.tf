output "zone_id" {
  description = "ID of the Route53 hosted zone for the base domain."
  value       = aws_route53_zone.this.zone_id
}

output "zone_arn" {
  description = "ARN of the hosted zone (for the external-dns and cert-manager IRSA roles)."
  value       = aws_route53_zone.this.arn
}

output "name_servers" {
  description = "Name servers to delegate the base domain to, at the parent zone or registrar."
  value       = aws_route53_zone.this.name_servers
}

output "certificate_arn" {
  description = "ARN of the validated ACM certificate for *.<domain> and <domain> (the ingress load balancer's TLS certificate)."
  value       = aws_acm_certificate_validation.wildcard.certificate_arn
}

output "ds_record" {
  description = "DS record to publish at the parent zone or registrar to complete the DNSSEC chain, or null when DNSSEC is off."
  value       = var.enable_dnssec ? aws_route53_key_signing_key.this[0].ds_record : null
}
