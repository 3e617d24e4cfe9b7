"""orders: orders, order lines, subscriptions (purchased apps), renewals, upgrades and unsubscriptions."""
