"""An OTLP/HTTP trace receiver on loopback, for tests: what an OpenTelemetry Collector's otlp receiver does.

`with Server(OtlpReceiver()) as receiver:` (tests/loopback.py); point OTEL_EXPORTER_OTLP_ENDPOINT at
`receiver.base_url`. It takes POST /v1/traces, decodes each body as the protobuf
ExportTraceServiceRequest (opentelemetry-proto) and keeps every span with its service's name;
`spans()` lists them, `wait_for(n)` waits until at least n have arrived.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str  # 16 hex, "" for a root
    attributes: dict[str, Any]


def _value(v: Any) -> Any:
    field = v.WhichOneof("value")
    return getattr(v, field) if field else None


class OtlpReceiver:
    base_url = ""

    def __init__(self) -> None:
        self.received: list[ReceivedSpan] = []
        self.requests = 0
        self.lock = threading.Lock()

    def spans(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, seconds: float = 10) -> list[ReceivedSpan]:
        deadline = time.monotonic() + seconds
        while len(self.spans()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.spans()

    def app(self) -> Starlette:
        async def traces(request: Request) -> Response:
            if request.headers.get("content-type") != "application/x-protobuf":
                return Response(status_code=415)
            message = ExportTraceServiceRequest.FromString(await request.body())
            got = []
            for resource_spans in message.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        got.append(
                            ReceivedSpan(
                                service=str(resource.get("service.name")),
                                name=s.name,
                                kind=s.kind,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                attributes={a.key: _value(a.value) for a in s.attributes},
                            )
                        )
            with self.lock:
                self.requests += 1
                self.received.extend(got)
            return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

        return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
