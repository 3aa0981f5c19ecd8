"""Storage: the SQLAlchemy Core schema, the async engine, and Alembic migrations."""
