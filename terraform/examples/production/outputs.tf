# Grouped by where they go: Backlot's settings (Helm values / environment) first.

output "backlot_base_domain" {
  description = "BACKLOT_BASE_DOMAIN."
  value       = var.base_domain
}

output "database_secret_arn" {
  description = "Secret with `database_url` (BACKLOT_DATABASE_URL), `tenant_database_admin_url` (BACKLOT_TENANT_DATABASE_ADMIN_URL) and `bootstrap_sql`."
  value       = module.postgres.app_secret_arn
}

output "backlot_tenant_database_host" {
  description = "BACKLOT_TENANT_DATABASE_HOST, and the host of BACKLOT_TENANT_DATABASE_ADMIN_URL."
  value       = module.postgres.address
}

output "database_endpoint" {
  description = "host:port of the shared PostgreSQL."
  value       = module.postgres.endpoint
}

output "database_master_secret_arn" {
  description = "Secret (managed and rotated by RDS) with the master password: only for running bootstrap_sql once."
  value       = module.postgres.master_user_secret_arn
}

output "backlot_kube_database_cidr" {
  description = "BACKLOT_KUBE_DATABASE_CIDR: the database subnets, the only range tenant pods may reach."
  value       = module.network.database_subnets_cidr
}

output "redis_endpoint" {
  description = "Host of the Redis primary (BACKLOT_BROKER_URL's host; TLS on port 6379)."
  value       = module.redis.primary_endpoint_address
}

output "backlot_broker_url_template" {
  description = "BACKLOT_BROKER_URL without its token; the `url` key of redis_auth_secret_arn is the complete one."
  value       = module.redis.broker_url_template
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret with the Redis AUTH token and the complete broker URL."
  value       = module.redis.auth_token_secret_arn
}

output "exports_bucket" {
  description = "S3 bucket for exports."
  value       = module.storage.exports_bucket
}

output "backups_bucket" {
  description = "S3 bucket for backups."
  value       = module.storage.backups_bucket
}

output "control_plane_role_arn" {
  description = "IRSA role for Backlot's service account (annotation eks.amazonaws.com/role-arn)."
  value       = module.iam.control_plane_role_arn
}

output "external_dns_role_arn" {
  description = "IRSA role for external-dns."
  value       = module.iam.external_dns_role_arn
}

output "cert_manager_role_arn" {
  description = "IRSA role for cert-manager's Route53 DNS-01 solver."
  value       = module.iam.cert_manager_role_arn
}

output "tenant_node_taint" {
  description = "Taint on the `tenants` node group: backlot.dev/tenants=true:NoSchedule."
  value       = "${module.eks.tenant_node_taint.key}=${module.eks.tenant_node_taint.value}:${module.eks.tenant_node_taint.effect}"
}

output "backlot_kube_tolerations" {
  description = "BACKLOT_KUBE_TOLERATIONS: tolerates the tenant node taint."
  value       = module.eks.backlot_kube_tolerations
}

output "backlot_kube_node_selector" {
  description = "BACKLOT_KUBE_NODE_SELECTOR: pins tenant runtimes to the `tenants` node group."
  value       = module.eks.backlot_kube_node_selector
}

output "control_plane_node_selector" {
  description = "Node selector for Backlot's own pods (the `control-plane` node group)."
  value       = module.eks.control_plane_node_selector
}

# Cluster access and DNS.

output "cluster_name" {
  description = "EKS cluster: `aws eks update-kubeconfig --name <this> --region <region>`."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API server URL."
  value       = module.eks.cluster_endpoint
}

output "certificate_arn" {
  description = "ACM wildcard certificate for the ingress load balancer (service.beta.kubernetes.io/aws-load-balancer-ssl-cert)."
  value       = module.dns.certificate_arn
}

output "name_servers" {
  description = "Delegate the base domain to these name servers."
  value       = module.dns.name_servers
}

output "dnssec_ds_record" {
  description = "DS record to publish at the parent zone to complete DNSSEC."
  value       = module.dns.ds_record
}

output "nat_public_ips" {
  description = "Addresses outbound traffic leaves from (tenant integrations may need to allow-list them)."
  value       = module.network.nat_public_ips
}
