"""Billing: everything Stripe (plans, checkout, subscriptions, seats, dunning).

It exposes a small Python API to the control plane and knows nothing of Kubernetes.
Until it lands, every organization is on the free plan.
"""
