"""What the services truly share: events, bus topology, storage, outbox, HTTP, auth, metrics."""
