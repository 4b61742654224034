"""The relay to NATS JetStream, durable consumers, the in-process bus."""
