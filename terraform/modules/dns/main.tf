data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  log_group_name = "/aws/route53/${var.domain_name}"
}

resource "aws_route53_zone" "this" {
  name    = var.domain_name
  comment = "Backlot base domain"

  tags = var.tags
}

# Query logging: us-east-1 only, written by Route53 through a log resource policy.
locals {
  query_log_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.us-east-1.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = ["arn:${local.partition}:logs:us-east-1:${local.account_id}:log-group:${local.log_group_name}"] } }
      },
    ]
  })
}

resource "aws_kms_key" "query_log" {
  provider = aws.us_east_1

  description             = "Route53 query logs of ${var.domain_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.query_log_key_policy

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "query_log" {
  provider = aws.us_east_1

  name              = local.log_group_name
  retention_in_days = var.query_log_retention_days
  kms_key_id        = aws_kms_key.query_log.arn

  tags = var.tags
}

data "aws_iam_policy_document" "query_log_write" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.query_log.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["route53.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "query_log" {
  provider = aws.us_east_1

  policy_name     = "route53-query-logs-${replace(var.domain_name, ".", "-")}"
  policy_document = data.aws_iam_policy_document.query_log_write.json
}

resource "aws_route53_query_log" "this" {
  zone_id                  = aws_route53_zone.this.zone_id
  cloudwatch_log_group_arn = aws_cloudwatch_log_group.query_log.arn

  depends_on = [aws_cloudwatch_log_resource_policy.query_log]
}

# DNSSEC: an asymmetric key in us-east-1 that only Route53's DNSSEC service may use.
locals {
  dnssec_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Route53DnssecSigns"
        Effect    = "Allow"
        Principal = { Service = "dnssec-route53.amazonaws.com" }
        Action    = ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        Sid       = "Route53DnssecGrants"
        Effect    = "Allow"
        Principal = { Service = "dnssec-route53.amazonaws.com" }
        Action    = "kms:CreateGrant"
        Resource  = "*"
        Condition = { Bool = { "kms:GrantIsForAWSResource" = "true" } }
      },
    ]
  })
}

resource "aws_kms_key" "dnssec" {
  #checkov:skip=CKV_AWS_7:Asymmetric signing keys (ECC_NIST_P256, required by Route53 DNSSEC) cannot be rotated by KMS; roll the key-signing key instead.
  count    = var.enable_dnssec ? 1 : 0
  provider = aws.us_east_1

  description              = "DNSSEC key-signing key of ${var.domain_name}"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 30
  policy                   = local.dnssec_key_policy

  tags = var.tags
}

resource "aws_route53_key_signing_key" "this" {
  count = var.enable_dnssec ? 1 : 0

  hosted_zone_id             = aws_route53_zone.this.zone_id
  key_management_service_arn = aws_kms_key.dnssec[0].arn
  name                       = "backlot"
}

resource "aws_route53_hosted_zone_dnssec" "this" {
  count = var.enable_dnssec ? 1 : 0

  hosted_zone_id = aws_route53_key_signing_key.this[0].hosted_zone_id
}

# The wildcard certificate, for the load balancer in front of the ingress controller.
resource "aws_acm_certificate" "wildcard" {
  domain_name               = "*.${var.domain_name}"
  subject_alternative_names = [var.domain_name]
  validation_method         = "DNS"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# Keyed by domain name, which is known at plan time. The wildcard and the apex ask for the
# same record; allow_overwrite lets the second write it again.
resource "aws_route53_record" "validation" {
  for_each = {
    for option in aws_acm_certificate.wildcard.domain_validation_options : option.domain_name => {
      name   = option.resource_record_name
      type   = option.resource_record_type
      record = option.resource_record_value
    }
  }

  zone_id         = aws_route53_zone.this.zone_id
  name            = each.value.name
  type            = each.value.type
  records         = [each.value.record]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "wildcard" {
  certificate_arn         = aws_acm_certificate.wildcard.arn
  validation_record_fqdns = distinct([for record in aws_route53_record.validation : record.fqdn])
}
