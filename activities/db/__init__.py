"""The record store's database: SQLAlchemy 2 models and Alembic migrations (PostgreSQL or SQLite)."""
