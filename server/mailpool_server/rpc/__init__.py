"""gRPC adapters: the call interceptor, servicers (decode → call → encode), status mapping."""
