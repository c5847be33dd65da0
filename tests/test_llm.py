"""The OpenAI-compatible client against a real scripted HTTP server on 127.0.0.1."""

import socket

import pytest
from llm_server import FakeLLM, Reply

from pipeline.config import LLMSettings
from pipeline.enrichment import llm
from pipeline.errors import BadInput, Cancelled

ANSWER = {"title": "Small teams", "clips": []}


def identity(data):
    return data


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


def client_for(server, **overrides):
    values = dict(base_url=server.url, model="test-model", timeout_seconds=2.0, max_retries=2,
                  backoff_seconds=0.02, backoff_max_seconds=1.0)
    values.update(overrides)
    return llm.ChatClient(LLMSettings(**values))


def gaps(server):
    times = [r.at for r in server.requests]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_valid_json_answer_sends_model_schema_and_key(server, monkeypatch):
    monkeypatch.setenv("CLIPDESK_LLM_API_KEY", "sk-test-123")
    server.push(Reply.completion(ANSWER))
    client = client_for(server)
    assert client.chat_json([{"role": "user", "content": "hi"}], {"type": "object"}, identity) == ANSWER
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test-123"
    assert request.body["model"] == "test-model" and request.body["max_tokens"] == 2048
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert (client.requests, client.retries, client.repairs) == (1, 0, 0)


def test_no_key_in_the_environment_sends_no_authorization(server, monkeypatch):
    monkeypatch.delenv("CLIPDESK_LLM_API_KEY", raising=False)
    server.push(Reply.completion(ANSWER))
    client_for(server).chat_json([], {}, identity)
    assert "Authorization" not in server.requests[0].headers


def test_json_in_a_code_fence_with_chatter_is_accepted(server):
    server.push(Reply.completion('Sure! Here it is:\n```json\n{"title": "Fenced", "clips": []}\n```\nEnjoy.'))
    assert client_for(server).chat_json([], {}, identity)["title"] == "Fenced"
    assert len(server.requests) == 1


def test_truncated_json_gets_one_repair_request(server):
    server.push(Reply.completion('{"title": "Cut', finish_reason="length"), Reply.completion(ANSWER))
    client = client_for(server)
    messages = [{"role": "user", "content": "transcript"}]
    assert client.chat_json(messages, {}, identity) == ANSWER
    repair = server.requests[1].body["messages"]
    assert repair[:1] == messages and "cut off" in repair[-1]["content"] and "only" in repair[-1]["content"]
    assert client.repairs == 1


def test_json_still_broken_after_the_repair_is_a_bad_answer(server):
    server.push(Reply.completion("not json at all"), Reply.completion("[1, 2, 3]"))
    with pytest.raises(llm.LLMBadAnswer, match="not an object"):
        client_for(server).chat_json([], {}, identity)
    assert len(server.requests) == 2


def test_schema_violations_found_by_the_validator_get_the_repair_too(server):
    def needs_clips(data):
        if not isinstance(data.get("clips"), list):
            raise ValueError('"clips" must be a list')
        return data
    server.push(Reply.completion({"clips": "none"}), Reply.completion(ANSWER))
    assert client_for(server).chat_json([], {}, needs_clips) == ANSWER
    assert '"clips" must be a list' in server.requests[1].prompt


def test_429_waits_as_long_as_retry_after_says(server):
    server.push(Reply(429, headers={"Retry-After": "0.4"}), Reply.completion(ANSWER))
    client = client_for(server, backoff_seconds=0.01)
    assert client.chat_json([], {}, identity) == ANSWER
    assert gaps(server)[0] >= 0.4        # the backoff alone would have waited ~0.01 s
    assert client.retries == 1


def test_500_then_success_is_retried(server):
    server.push(Reply(500), Reply.completion(ANSWER))
    client = client_for(server)
    assert client.chat_json([], {}, identity) == ANSWER
    assert len(server.requests) == 2 and client.retries == 1


def test_a_timeout_is_retried(server):
    server.push(Reply.completion(ANSWER, delay=1.5), Reply.completion(ANSWER))
    client = client_for(server, timeout_seconds=0.3)
    assert client.chat_json([], {}, identity) == ANSWER
    assert client.retries == 1


def test_persistent_503_backs_off_exponentially_then_gives_up(server):
    server.default = Reply(503)
    client = client_for(server, max_retries=3, backoff_seconds=0.1)
    with pytest.raises(llm.LLMUnavailable, match=r"HTTP 503; 4 attempts"):
        client.chat_json([], {}, identity)
    assert len(server.requests) == 4
    for attempt, gap in enumerate(gaps(server)):
        assert gap >= 0.1 * 2 ** attempt / 2     # equal jitter: at least half of the doubled delay


def test_backoff_doubles_with_jitter_and_respects_the_cap():
    client = llm.ChatClient(LLMSettings(base_url="http://127.0.0.1:9", model="m", backoff_seconds=1.0,
                                        backoff_max_seconds=5.0))
    for attempt, full in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        delays = [client.backoff(attempt) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > 0          # jitter: not all the same


def test_invalid_api_key_fails_fast_without_retries(server, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-wrong-secret")
    server.default = Reply(401, {"error": {"message": "Incorrect API key"}})
    client = client_for(server, api_key_env="MY_LLM_KEY")
    with pytest.raises(llm.LLMAuthError) as raised:
        client.chat_json([], {}, identity)
    assert isinstance(raised.value, BadInput)
    assert "MY_LLM_KEY" in str(raised.value) and "sk-wrong-secret" not in str(raised.value)
    assert len(server.requests) == 1


def test_auto_response_format_steps_down_when_the_server_rejects_it(server):
    server.push(Reply(400, {"error": {"message": "json_schema not supported"}}),
                Reply(400, {"error": {"message": "response_format not supported"}}), Reply.completion(ANSWER))
    client = client_for(server)
    assert client.chat_json([], {}, identity) == ANSWER
    sent = [r.body.get("response_format", {}).get("type") for r in server.requests]
    assert sent == ["json_schema", "json_object", None]
    server.push(Reply.completion(ANSWER))
    client.chat_json([], {}, identity)
    assert "response_format" not in server.requests[-1].body     # remembered for the next window


def test_other_client_errors_are_not_retried(server):
    server.default = Reply(404, {"error": {"message": "model 'nope' not found"}})
    with pytest.raises(llm.LLMUnavailable, match="model 'nope' not found"):
        client_for(server, response_format="json_object").chat_json([], {}, identity)
    assert len(server.requests) == 1


def test_nobody_listening_is_retried_then_unavailable():
    with socket.socket() as sock:      # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = llm.ChatClient(LLMSettings(base_url=f"http://127.0.0.1:{port}", model="m", max_retries=1,
                                        backoff_seconds=0.01))
    with pytest.raises(llm.LLMUnavailable, match="could not connect; 2 attempts"):
        client.chat_json([], {}, identity)


def test_cancel_during_a_backoff_wait_stops_the_retries(server):
    server.default = Reply(503)
    calls = []

    def on_wait():
        calls.append(1)
        if len(calls) > 2:
            raise Cancelled("The job was cancelled.")
    client = llm.ChatClient(LLMSettings(base_url=server.url, model="m", max_retries=5, backoff_seconds=5.0),
                            on_wait=on_wait)
    with pytest.raises(Cancelled):
        client.chat_json([], {}, identity)
    assert len(server.requests) == 1


def test_endpoint_accepts_base_urls_with_or_without_v1():
    assert llm.endpoint("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert llm.endpoint("http://h:1") == "http://h:1/v1/chat/completions"
    assert llm.endpoint("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"
    assert llm.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert llm.retry_after("3") == 3.0 and llm.retry_after(None) is None


def test_the_fake_server_runs_as_a_subprocess_for_other_processes(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script, record = tmp_path / "replies.json", tmp_path / "requests.jsonl"
    script.write_text(json.dumps([{"status": 503}, {"content": ANSWER}, {"default": {"status": 500}}]))
    server_py = Path(__file__).with_name("llm_server.py")
    process = subprocess.Popen([sys.executable, str(server_py), "--script", str(script), "--record", str(record)],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = llm.ChatClient(LLMSettings(base_url=url, model="m", max_retries=2, backoff_seconds=0.01))
        assert client.chat_json([{"role": "user", "content": "x"}], {}, identity) == ANSWER
    finally:
        process.terminate()
        process.wait(timeout=10)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 2 and all(line["body"]["model"] == "m" for line in lines)


@pytest.mark.parametrize("section, problem", [
    ("llm: {response_format: yaml}", "llm.response_format: must be 'auto'"),
    ("llm: {base_url: 'http://127.0.0.1:11434/v1'}", "llm.model: must name a model"),
    ("llm: {base_url: 'ftp://host'}", "llm.base_url: must be empty"),
    ("llm: {max_tokens: 8000, context_tokens: 8192}", "llm.context_tokens: must leave room"),
    ("enrich: {max_clips: 11}", "enrich.max_clips: must be between 1 and 10"),
    ("enrich: {min_clips: 11}", "enrich.min_clips: must be between 0 and 10"),
])
def test_bad_llm_and_enrich_settings_are_rejected_at_start(tmp_path, section, problem):
    from pipeline.config import load_settings
    from pipeline.errors import ConfigError
    path = tmp_path / "pipeline.yaml"
    path.write_text(section + "\n")
    with pytest.raises(ConfigError, match=problem):
        load_settings(path)
