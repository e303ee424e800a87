"""The mesh's gRPC services, with their generated modules imported so their
descriptors (and access rules) are in the default descriptor pool."""

from __future__ import annotations

from mesh.analytics.v1 import analytics_service_pb2
from mesh.auth.v1 import auth_service_pb2
from mesh.llm.v1 import llm_service_pb2
from mesh.notify.v1 import notify_service_pb2

_MODULES = (analytics_service_pb2, auth_service_pb2, llm_service_pb2, notify_service_pb2)

SERVICE_NAMES: tuple[str, ...] = tuple(
    service.full_name for module in _MODULES for service in module.DESCRIPTOR.services_by_name.values()
)

# Full names of each service, for routing (Envoy) and health checks.
ANALYTICS_SERVICE: str = analytics_service_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name
AUTH_SERVICE: str = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
LLM_SERVICE: str = llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name
NOTIFY_SERVICE: str = notify_service_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name

# The gRPC services each deployable process serves (one Envoy cluster each).
SERVICES_BY_PROCESS: dict[str, tuple[str, ...]] = {
    "analytics": (ANALYTICS_SERVICE, AUTH_SERVICE),
    "llm": (LLM_SERVICE,),
    "notify": (NOTIFY_SERVICE,),
}
