"""mailpool server: identities backed by pools of rotated mailboxes, served over gRPC."""
