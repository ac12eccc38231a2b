output "cluster_name" {
  description = "Name of the EKS cluster (for `aws eks update-kubeconfig --name`)."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the Kubernetes API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_security_group_id" {
  description = "Security group EKS attaches to the cluster and every managed node; databases and caches admit it."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider for IRSA."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer" {
  description = "OIDC issuer host and path without the scheme, as used in IRSA trust conditions."
  value       = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}

output "node_group_names" {
  description = "Managed node groups by role: `control-plane` and `tenants`."
  value       = { for key, group in aws_eks_node_group.this : key => group.node_group_name }
}

output "tenant_node_taint" {
  description = "Taint on the `tenants` node group (Kubernetes spelling of the effect)."
  value       = local.tenant_taint
}

output "tenant_node_labels" {
  description = "Labels on the `tenants` node group."
  value       = local.node_groups["tenants"].labels
}

output "backlot_kube_tolerations" {
  description = "Value for BACKLOT_KUBE_TOLERATIONS: lets tenant runtimes onto the tainted `tenants` nodes."
  value = jsonencode([{
    key      = local.tenant_taint.key
    operator = "Equal"
    value    = local.tenant_taint.value
    effect   = local.tenant_taint.effect
  }])
}

output "backlot_kube_node_selector" {
  description = "Value for BACKLOT_KUBE_NODE_SELECTOR: keeps tenant runtimes on the `tenants` nodes only."
  value       = jsonencode({ (local.pool_label) = "tenants" })
}

output "control_plane_node_selector" {
  description = "Node selector for Backlot's own pods (Helm values): the `control-plane` group."
  value       = { (local.pool_label) = "control-plane" }
}
