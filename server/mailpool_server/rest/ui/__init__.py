"""The operator dashboard at /ui/: server-rendered pages over the same gRPC calls as
every other client, signed in with an API key kept server-side (see README, Dashboard)."""
