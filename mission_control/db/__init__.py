"""Storage: every table (SQLAlchemy Core, one `MetaData`), the async engine, and Alembic
migrations. The lowest layer: it imports no other part of Mission Control but `errors`."""
