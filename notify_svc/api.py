"""NotifyService servicer: thin adapters between protos and the store."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import grpc

from mesh.notify.v1 import notify_service_pb2 as pb
from mesh.notify.v1 import notify_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import subscription_pb2
from mesh_runtime.database import BlockingRunner
from mesh_runtime.pagination import decode_page_token, encode_page_token, page_size
from mesh_runtime.wire import timestamp_or_none
from notify_svc import store

_LIST_QUERY = "subscriptions"


def subscription_to_proto(row: store.SubscriptionRow) -> subscription_pb2.Subscription:
    """The wire form of a stored subscription."""
    return subscription_pb2.Subscription(
        id=str(row.id),
        email=row.email,
        display_name=row.display_name,
        create_time=timestamp_or_none(row.create_time),
    )


def _page_key(after: list[Any]) -> tuple[dt.datetime, uuid.UUID]:
    created, sub_id = after
    return dt.datetime.fromisoformat(created), uuid.UUID(sub_id)


class NotifyServicer(pb_grpc.NotifyServiceServicer):
    """Serves subscriptions from the notify store."""

    def __init__(self, runner: BlockingRunner) -> None:
        self.runner = runner

    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSubscriptionResponse:
        sub = request.subscription
        row = await self.runner.run(store.create_subscription, sub.email, sub.display_name)
        return pb.CreateSubscriptionResponse(subscription=subscription_to_proto(row))

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSubscriptionsResponse:
        after = decode_page_token(request.page_token, _LIST_QUERY, _page_key)
        limit = page_size(request.page_size)
        rows = await self.runner.run(store.list_subscriptions, limit + 1, after)
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_token = encode_page_token(
                [last.create_time.isoformat(), str(last.id)], _LIST_QUERY
            )
        return pb.ListSubscriptionsResponse(
            subscriptions=[subscription_to_proto(r) for r in rows], next_page_token=next_token
        )
