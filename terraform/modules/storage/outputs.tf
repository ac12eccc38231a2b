output "exports_bucket" {
  description = "Name of the exports bucket."
  value       = module.exports.name
}

output "exports_bucket_arn" {
  description = "ARN of the exports bucket."
  value       = module.exports.arn
}

output "backups_bucket" {
  description = "Name of the backups bucket."
  value       = module.backups.name
}

output "backups_bucket_arn" {
  description = "ARN of the backups bucket."
  value       = module.backups.arn
}

output "access_logs_bucket" {
  description = "Name of the bucket receiving the S3 server access logs of the other two."
  value       = aws_s3_bucket.access_logs.id
}

output "kms_key_arn" {
  description = "KMS key encrypting exports and backups (SSE-KMS); writers and readers need kms:GenerateDataKey and kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}
