"""analytics_svc: time-series datasets, ingestion, analyses and results."""
