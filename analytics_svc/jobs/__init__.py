"""Analysis jobs: scheduling, the work queue, workers, the outbox relay and insights.

The database is the source of truth for every result; NATS only carries work
and news about it:

- A result row is written (pending) together with an outbox row holding its
  job message, in one transaction; the relay publishes the job to the
  ``ANALYSIS_JOBS`` work queue.
- A worker claims a result (pending -> running) with a conditional update, so
  two workers never run it at once; a result whose worker stopped
  heartbeating is handed back to the queue by the sweeper.
- Finishing a result writes its outcome, its events and a ``pg_notify`` (for
  WatchResults) in one transaction.
"""
