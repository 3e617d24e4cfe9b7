"""supervision: service flows, requests, attachments, operation records, appeals and messages."""
