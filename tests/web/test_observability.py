from __future__ import annotations

from flask.testing import FlaskClient


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_metrics_have_the_request_histogram_by_endpoint(client: FlaskClient) -> None:
    client.get("/login")
    client.get("/no/such/page/12345")
    client.get("/api/v1/me")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert "cloudmgr_http_request_seconds" in text
    assert 'endpoint="auth.login"' in text
    assert 'endpoint="api.me"' in text and 'status="401"' in text
    assert 'endpoint="unmatched"' in text
    assert "/no/such/page/12345" not in text  # never the raw path
