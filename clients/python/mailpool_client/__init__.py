"""mailpool client library."""
