"""The transactional outbox: messages written with the change they announce, relayed after commit."""
