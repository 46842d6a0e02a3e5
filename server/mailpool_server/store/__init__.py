"""SQLAlchemy 2.0 async storage: tables, repositories and migrations. Rows never leave."""
