"""
Tracking plans: load the three formats, compile their JSON Schemas, check messages.

Imports only :mod:`otel_segment.errors`, the standard library and its own dependencies
(``jsonschema-rs``; PyYAML for YAML plans, from the ``yaml`` extra).
"""

from __future__ import annotations

from otel_segment.plans.plan import TrackingPlan, Unplanned

__all__ = ["TrackingPlan", "Unplanned"]
