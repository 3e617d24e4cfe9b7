"""iam-agency: accounts, users, roles, API tokens, enterprise projects and (later)
agencies with their policies."""
