"""The transactional outbox: a message is written with the change it announces."""
