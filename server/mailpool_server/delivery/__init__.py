"""Delivery: the dispatcher loop, transports (smtp, maildir), the inbound listener, timers."""
