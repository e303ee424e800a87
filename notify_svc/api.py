"""NotifyService servicer: thin adapters between protos and the store."""

from __future__ import annotations

from typing import Any

import grpc

from mesh.notify.v1 import notify_service_pb2 as pb
from mesh.notify.v1 import notify_service_pb2_grpc as pb_grpc
from mesh.notify.v1 import subscription_pb2
from mesh_runtime.database import BlockingRunner
from mesh_runtime.errors import FieldViolation, InvalidArgument, NotFound
from mesh_runtime.pagination import PageRequest, time_and_id, time_and_id_key
from mesh_runtime.update_masks import update_paths
from mesh_runtime.wire import timestamp_or_none
from notify_svc import links, store
from notify_svc.delivery import Dispatcher

_LIST_QUERY = "subscriptions"


_GONE = "You are unsubscribed; no more e-mails will come from this subscription."


def subscription_to_proto(row: store.SubscriptionRow) -> subscription_pb2.Subscription:
    """The wire form of a stored subscription."""
    return subscription_pb2.Subscription(
        id=str(row.id),
        email=row.email,
        display_name=row.display_name,
        create_time=timestamp_or_none(row.create_time),
        dataset_ids=list(row.dataset_ids or []),
        event_types=list(row.event_types or []),  # type: ignore[arg-type]
        min_anomaly_count=row.min_anomaly_count,
        update_time=timestamp_or_none(row.update_time),
        disabled=row.disabled,
    )


_EVENT_WORDS = {
    subscription_pb2.EVENT_TYPE_RESULT_SUCCEEDED: "finished analysis results",
    subscription_pb2.EVENT_TYPE_RESULT_FAILED: "failed analyses",
    subscription_pb2.EVENT_TYPE_ANOMALY_DETECTED: "detected anomalies",
}


def describe_subscription(row: store.SubscriptionRow) -> str:
    """What a subscription mails, in words for its recipient (the unsubscribe page)."""
    types = sorted(set(row.event_types or [])) or list(_EVENT_WORDS)
    words = [_EVENT_WORDS[t] for t in types if t in _EVENT_WORDS]
    about = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    datasets = len(row.dataset_ids or [])
    scope = "every dataset" if not datasets else "1 dataset" if datasets == 1 else f"{datasets} datasets"
    threshold = f" with at least {row.min_anomaly_count} anomalies" if row.min_anomaly_count > 1 else ""
    return f"Analytics Mesh e-mails about {about}{threshold}, for {scope}"


def delivery_to_proto(row: store.DeliveryRow) -> subscription_pb2.Delivery:
    """The wire form of a stored delivery."""
    sub_id = row.__data__.get("subscription")
    return subscription_pb2.Delivery(
        id=str(row.id),
        subscription_id=str(sub_id) if sub_id else "",
        event_id=row.event_id,
        event_type=row.event_type,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        last_error=row.last_error,
        email=row.email,
        subject=row.subject,
        result_id=row.result_id,
        create_time=timestamp_or_none(row.create_time),
        update_time=timestamp_or_none(row.update_time),
        next_attempt_time=timestamp_or_none(row.next_attempt_time),
        sent_time=timestamp_or_none(row.sent_time),
    )


def _email_required() -> InvalidArgument:
    return InvalidArgument(
        "invalid request: subscription.email: an address is required",
        violations=[FieldViolation("subscription.email", "an address is required")],
    )


def _created_then_id(row: Any) -> list[Any]:
    return time_and_id(row.create_time, row.id)


class NotifyServicer(pb_grpc.NotifyServiceServicer):
    """Serves subscriptions and the delivery log from the notify store."""

    def __init__(self, runner: BlockingRunner, dispatcher: Dispatcher, link_secret: str) -> None:
        self.runner = runner
        self.dispatcher = dispatcher
        self.link_secret = link_secret

    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateSubscriptionResponse:
        sub = request.subscription
        if not sub.email:
            raise _email_required()
        row = await self.runner.run(
            store.create_subscription,
            sub.email,
            sub.display_name,
            list(sub.dataset_ids),
            list(sub.event_types),
            sub.min_anomaly_count,
        )
        return pb.CreateSubscriptionResponse(subscription=subscription_to_proto(row))

    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSubscriptionResponse:
        row = await self.runner.run(store.get_subscription, request.id)
        return pb.GetSubscriptionResponse(subscription=subscription_to_proto(row))

    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateSubscriptionResponse:
        s = request.subscription
        values: dict[str, Any] = {
            "email": s.email,
            "display_name": s.display_name,
            "dataset_ids": list(s.dataset_ids),
            "event_types": list(s.event_types),
            "min_anomaly_count": s.min_anomaly_count,
            "disabled": s.disabled,
        }
        paths = update_paths(s, request.update_mask, store.UPDATABLE_FIELDS, "subscription")
        changes = {name: values[name] for name in paths}
        if "email" in changes and not s.email:
            raise _email_required()
        row = await self.runner.run(store.update_subscription, s.id, changes)
        return pb.UpdateSubscriptionResponse(subscription=subscription_to_proto(row))

    async def DeleteSubscription(
        self, request: pb.DeleteSubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteSubscriptionResponse:
        await self.runner.run(store.delete_subscription, request.id)
        return pb.DeleteSubscriptionResponse()

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSubscriptionsResponse:
        page = PageRequest.of(request.page_token, request.page_size, _LIST_QUERY, time_and_id_key)
        rows = await self.runner.run(store.list_subscriptions, page.fetch, page.after)
        rows, next_token = page.cut(rows, _created_then_id)
        return pb.ListSubscriptionsResponse(
            subscriptions=[subscription_to_proto(r) for r in rows], next_page_token=next_token
        )

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        query = f"deliveries|{request.subscription_id.lower()}|{request.event_id}|{request.status}"
        page = PageRequest.of(request.page_token, request.page_size, query, time_and_id_key)
        rows = await self.runner.run(
            store.list_deliveries,
            page.fetch,
            page.after,
            subscription_id=request.subscription_id,
            event_id=request.event_id,
            status=request.status,
        )
        rows, next_token = page.cut(rows, _created_then_id)
        return pb.ListDeliveriesResponse(
            deliveries=[delivery_to_proto(r) for r in rows], next_page_token=next_token
        )

    async def SendTestEmail(
        self, request: pb.SendTestEmailRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendTestEmailResponse:
        row = await self.dispatcher.send_test(request.id)
        return pb.SendTestEmailResponse(delivery=delivery_to_proto(row))

    async def CheckUnsubscribe(
        self, request: pb.CheckUnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckUnsubscribeResponse:
        subscription_id = links.verify_unsubscribe_token(self.link_secret, request.token)
        try:
            row = await self.runner.run(store.get_subscription, subscription_id)
        except NotFound:
            return pb.CheckUnsubscribeResponse(message=_GONE, disabled=True)
        description = describe_subscription(row)
        if row.disabled:
            return pb.CheckUnsubscribeResponse(
                email=row.email,
                disabled=True,
                message=f"{row.email} is already unsubscribed.",
                description=description,
            )
        return pb.CheckUnsubscribeResponse(
            email=row.email,
            message=f"Nothing changed yet: confirm (POST) to stop the e-mails to {row.email}.",
            description=description,
        )

    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnsubscribeResponse:
        subscription_id = links.verify_unsubscribe_token(self.link_secret, request.token)
        try:
            row = await self.runner.run(store.disable_subscription, subscription_id)
        except NotFound:
            return pb.UnsubscribeResponse(message=_GONE, disabled=True)
        return pb.UnsubscribeResponse(
            email=row.email,
            disabled=True,
            message=f"{row.email} is unsubscribed; no more e-mails will come from this subscription.",
        )
