"""Restora's HTTP API (FastAPI). Never imports torch or the models."""
