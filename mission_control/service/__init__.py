"""The domain layer: pure rules (sizing, licensing, alerts) and the database-backed services."""
