"""Queue workers: they keep the models loaded and run restore jobs (and webhook deliveries)."""
