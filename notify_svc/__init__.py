"""notify_svc: e-mail subscriptions and notifications about analysis events."""
