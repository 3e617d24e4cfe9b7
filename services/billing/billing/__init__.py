"""billing: accounts, balances, payment methods, the double-entry ledger, payments, refunds, bills and invoices."""
