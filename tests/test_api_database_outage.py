"""The HTTP API while its PostgreSQL server is down (issue 16): a 503 problem with Retry-After that says
the database is unreachable, never a bare 500; answers come back by themselves once the server is up."""

import httpx
import pytest
from api_server import ApiServer
from workers import use_config

pytestmark = pytest.mark.slow   # a uvicorn subprocess and a PostgreSQL restart


def test_the_api_says_503_while_the_database_is_down_and_recovers(tmp_path, monkeypatch, postgres_server,
                                                                  postgres_url):
    monkeypatch.setenv("CLIPDESK_DATABASE_URL", postgres_url)
    settings = use_config(tmp_path, monkeypatch)
    with ApiServer(settings) as api, httpx.Client(base_url=api.url, timeout=30) as client:
        assert client.get("/v1/jobs").status_code == 200
        postgres_server.stop()
        try:
            down = client.get("/v1/jobs")
        finally:
            postgres_server.start()
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert down.headers["retry-after"] == "5"
        body = down.json()
        assert body["status"] == 503 and "unreachable" in body["detail"] and body["instance"] == "/v1/jobs"
        assert client.get("/v1/jobs").status_code == 200   # the same API process, no restart
