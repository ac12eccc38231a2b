data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition

  irsa_subjects = merge(
    { "control-plane" = "${var.control_plane_namespace}/${var.control_plane_service_account}" },
    var.enable_external_dns ? { "external-dns" = var.external_dns_service_account } : {},
    var.enable_cert_manager ? { "cert-manager" = var.cert_manager_service_account } : {},
  )
}

data "aws_iam_policy_document" "assume" {
  for_each = local.irsa_subjects

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${replace(each.value, "/", ":")}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.irsa_subjects

  name                 = "${var.name}-${each.key}"
  description          = "IRSA role of ${each.value}"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  max_session_duration = 3600

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !(var.enable_external_dns || var.enable_cert_manager) || var.hosted_zone_arn != null
      error_message = "hosted_zone_arn is required when external-dns or cert-manager is enabled."
    }
  }
}

# The control plane: its buckets, its secrets, the keys behind them. Nothing else.
data "aws_iam_policy_document" "control_plane" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = var.bucket_arns
  }

  statement {
    sid = "ReadWriteObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [for arn in var.bucket_arns : "${arn}/*"]
  }

  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = var.secret_arns
  }

  statement {
    sid       = "UseDataKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = var.kms_key_arns
  }
}

resource "aws_iam_role_policy" "control_plane" {
  name   = "backlot-control-plane"
  role   = aws_iam_role.this["control-plane"].id
  policy = data.aws_iam_policy_document.control_plane.json
}

data "aws_iam_policy_document" "external_dns" {
  count = var.enable_external_dns ? 1 : 0

  statement {
    sid       = "ChangeRecordsInZone"
    actions   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:ListTagsForResource"]
    resources = [var.hosted_zone_arn]
  }

  statement {
    sid       = "FindZones"
    actions   = ["route53:ListHostedZones"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "external_dns" {
  count = var.enable_external_dns ? 1 : 0

  name   = "external-dns"
  role   = aws_iam_role.this["external-dns"].id
  policy = data.aws_iam_policy_document.external_dns[0].json
}

data "aws_iam_policy_document" "cert_manager" {
  count = var.enable_cert_manager ? 1 : 0

  statement {
    sid       = "ChallengeRecordsInZone"
    actions   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"]
    resources = [var.hosted_zone_arn]

    # Only ACME challenge TXT records, never the zone's other records.
    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = ["_acme-challenge.*"]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["TXT"]
    }
  }

  statement {
    sid       = "WatchChanges"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }

  statement {
    sid       = "FindZones"
    actions   = ["route53:ListHostedZonesByName"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "cert_manager" {
  count = var.enable_cert_manager ? 1 : 0

  name   = "cert-manager"
  role   = aws_iam_role.this["cert-manager"].id
  policy = data.aws_iam_policy_document.cert_manager[0].json
}
