"""Which fields an Update RPC changes (AIP-134), the same way for every service.

With an ``update_mask``, the fields it names. Without one, the fields that are
populated in the request's resource: a non-default scalar, a non-empty list
or map, a set message or oneof member. (So a field can be cleared, or set to
its default such as ``false`` or ``0``, only by naming it in the mask.) Fields
an update cannot change (the id, output-only fields) never count.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from mesh_runtime.errors import InvalidArgument


def update_paths(resource: Message, mask: FieldMask, updatable: Iterable[str], resource_field: str) -> set[str]:
    """The names of the fields of ``resource`` to change: the mask's paths, or
    (no mask) those of ``updatable`` populated in ``resource``. InvalidArgument
    on ``update_mask`` when there is no mask and nothing updatable is set;
    ``resource_field`` names the request's resource field in that message."""
    if mask.paths:
        return set(mask.paths)
    allowed = set(updatable)
    populated = {field.name for field, _ in resource.ListFields()} & allowed
    if not populated:
        raise InvalidArgument.for_field(
            "update_mask",
            f"nothing to update: set at least one of {', '.join(sorted(allowed))} in {resource_field}"
            " (without a mask, the fields set to a non-default value are updated), or name the fields here",
        )
    return populated
