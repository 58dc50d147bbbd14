"""GET /, health, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate as validate_spec

from server import __version__


async def test_root_describes_the_app(client: Any, settings: Any) -> None:
    response = await client.get("/")
    assert response.status == 200
    body = await response.json()
    assert body["name"] == settings.APP_NAME
    assert body["version"] == __version__
    assert body["environment"] == "test"
    assert body["components"]["websocket"] is True
    assert body["components"]["telegram"] is False


async def test_liveness(client: Any) -> None:
    response = await client.get("/health/live")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readiness_reports_each_service_with_latency(client: Any) -> None:
    monitor_ready = await client.get("/health/ready")
    body = await monitor_ready.json()
    assert monitor_ready.status == 200, body
    assert body["status"] == "ready"
    assert set(body["services"]) == {"postgres", "redis", "rabbitmq"}
    for service in body["services"].values():
        assert service["status"] == "up"
        assert service["latency_ms"] >= 0


async def test_metrics_count_requests_by_route_template(client: Any) -> None:
    await client.get("/health/live")
    await client.get("/tasks/00000000-0000-0000-0000-000000000000")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/health/live",status="200"}' in text
    assert 'route="/tasks/{task_id}",status="401"' in text
    assert "00000000-0000" not in text  # raw paths never become labels
    assert "process_resident_memory_bytes" in text
    assert "http_request_duration_seconds_bucket" in text


async def test_openapi_is_valid_3_1_and_lists_the_routes(client: Any) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    spec = await response.json()
    validate_spec(spec)
    assert spec["openapi"] == "3.1.0"
    assert {"/", "/health/live", "/health/ready", "/tasks/example", "/tasks/{task_id}"} <= set(
        spec["paths"]
    )
    create = spec["paths"]["/tasks/example"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ExampleTaskIn"
    )
    assert {"202", "415", "422", "400", "413"} <= set(create["responses"])
    schemas = spec["components"]["schemas"]
    assert "ErrorEnvelope" in schemas and "TaskOut" in schemas


async def test_docs_pages_load_only_local_assets(client: Any) -> None:
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status == 200
        html = await response.text()
        assert "http://" not in html and "https://" not in html
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    for asset in (
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-init.js",
        "redoc.standalone.js",
    ):
        assert (await client.get(f"/static/docs/{asset}")).status == 200
    assert (await client.get("/static/../pyproject.toml")).status in (403, 404)
