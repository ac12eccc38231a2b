output "primary_endpoint_address" {
  description = "Host name of the primary: the host in BACKLOT_BROKER_URL."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Port Redis listens on (TLS only)."
  value       = aws_elasticache_replication_group.this.port
}

output "auth_token_secret_arn" {
  description = "Secrets Manager secret holding `auth_token`, `host`, `port` and the complete broker `url` (rediss://, TLS verified)."
  value       = aws_secretsmanager_secret.auth_token.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the cache and the auth token secret; readers of the secret need kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.this.id
}

output "broker_url_template" {
  description = "BACKLOT_BROKER_URL with the token left as <auth token> (the secret's `url` key has it filled in)."
  value       = "rediss://:<auth token>@${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port}/0?ssl_cert_reqs=required"
}
