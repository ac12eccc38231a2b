locals {
  tags = merge(var.tags, {
    "backlot.dev/installation" = var.name
    "managed-by"               = "terraform"
  })
}

module "network" {
  source = "../../modules/network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  cluster_name       = var.name
}

module "eks" {
  source = "../../modules/eks"

  name                   = var.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = length(var.cluster_public_access_cidrs) > 0
  public_access_cidrs    = var.cluster_public_access_cidrs
  admin_role_arns        = var.cluster_admin_role_arns
}

module "postgres" {
  source = "../../modules/postgres"

  name                     = var.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.database_subnet_ids
  client_security_group_id = module.eks.node_security_group_id
  instance_class           = var.postgres_instance_class
}

module "redis" {
  source = "../../modules/redis"

  name                     = var.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.private_subnet_ids
  client_security_group_id = module.eks.node_security_group_id
  node_type                = var.redis_node_type
}

module "storage" {
  source = "../../modules/storage"

  bucket_prefix = var.bucket_prefix
}

module "dns" {
  source = "../../modules/dns"

  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  domain_name = var.base_domain
}

module "iam" {
  source = "../../modules/iam"

  name              = var.name
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
  bucket_arns       = [module.storage.exports_bucket_arn, module.storage.backups_bucket_arn]
  secret_arns       = concat([module.postgres.app_secret_arn, module.redis.auth_token_secret_arn], var.extra_secret_arns)
  kms_key_arns      = [module.storage.kms_key_arn, module.postgres.kms_key_arn, module.redis.kms_key_arn]
  hosted_zone_arn   = module.dns.zone_arn
}
