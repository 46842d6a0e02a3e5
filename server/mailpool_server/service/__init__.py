"""Domain and use cases. Imports no gRPC, protobuf, SQLAlchemy or HTTP library."""
