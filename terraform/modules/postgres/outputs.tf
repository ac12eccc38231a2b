output "address" {
  description = "Host name of the database: the host in BACKLOT_DATABASE_URL and BACKLOT_TENANT_DATABASE_ADMIN_URL, and BACKLOT_TENANT_DATABASE_HOST."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port PostgreSQL listens on."
  value       = aws_db_instance.this.port
}

output "endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.this.endpoint
}

output "database_name" {
  description = "The control plane's database."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user; only for bootstrapping Backlot's roles (its password is rotated by RDS)."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret (managed and rotated by RDS) holding the master user's `username` and `password`."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "KMS key encrypting storage, Performance Insights and the master secret; readers of the secret need kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}

output "security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.this.id
}

output "app_secret_arn" {
  description = "Secrets Manager secret with `database_url` (BACKLOT_DATABASE_URL), `tenant_database_admin_url` (BACKLOT_TENANT_DATABASE_ADMIN_URL) and `bootstrap_sql`."
  value       = aws_secretsmanager_secret.app.arn
}

output "app_username" {
  description = "Role of BACKLOT_DATABASE_URL."
  value       = var.app_username
}

output "tenant_admin_username" {
  description = "Role of BACKLOT_TENANT_DATABASE_ADMIN_URL (CREATEDB, CREATEROLE)."
  value       = var.tenant_admin_username
}
