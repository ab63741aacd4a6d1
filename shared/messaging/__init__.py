"""RabbitMQ plumbing shared by every service: envelope, topology, outbox, inbox, consumers."""
