"""provisioning: deliveries: license keys, SaaS tenants and cloud deployments."""
