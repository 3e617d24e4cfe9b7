"""catalog: sellers, products, specifications, prices, agreements and saved lists."""
