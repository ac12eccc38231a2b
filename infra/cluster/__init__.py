"""The real Kubernetes test cluster: etcd, control plane and kwok fake nodes on loopback."""
