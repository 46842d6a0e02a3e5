"""The HTTP shim: contract JSON in, gRPC call, contract JSON out. No business rules."""
