"""What every Mercato service shares: configuration, the database unit of work, the
outbox and inbox, event contracts, metrics, logging, the clock and the caller's identity."""
