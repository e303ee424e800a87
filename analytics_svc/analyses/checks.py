"""What an analysis request must satisfy before it is stored (RunAnalysis and schedules alike)."""

from __future__ import annotations

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh_runtime.errors import InvalidArgument


def check_kind(kind: int, parameters: apb.AnalysisParameters, field_prefix: str) -> None:
    """InvalidArgument naming the field when an analysis of ``kind`` cannot run with ``parameters``."""
    if kind == apb.ANALYSIS_KIND_UNSPECIFIED:
        raise InvalidArgument.for_field(f"{field_prefix}kind", "value is required")
    if kind == apb.ANALYSIS_KIND_CORRELATION and not parameters.correlate_with_dataset_id:
        raise InvalidArgument.for_field(
            f"{field_prefix}parameters.correlate_with_dataset_id", "a correlation needs the other dataset's id"
        )
    if parameters.HasField("window_start") and parameters.HasField("window_end"):
        if parameters.window_end.ToDatetime() <= parameters.window_start.ToDatetime():
            raise InvalidArgument.for_field(f"{field_prefix}parameters.window_end", "must be after window_start")
