"""Webhook delivery: signed CloudEvents POSTed to subscriptions, retried on Event Grid's
schedule over durable bus consumers, with a delivery log."""
