"""ASGI entry point for production servers: ``uvicorn app.asgi:app`` (settings from the environment, JSON logs)."""
from app.main import create_app
from core.logs import configure_logging

configure_logging()
app = create_app()
