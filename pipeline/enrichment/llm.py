"""A small client for any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, Ollama,
vLLM, llama.cpp server, LM Studio), over plain ``requests``.

It behaves like a careful production client:
- timeouts, connection errors, HTTP 429 and 5xx are retried up to ``llm.max_retries`` times with
  exponential backoff and jitter (the delay doubles from ``llm.backoff_seconds``, capped at
  ``llm.backoff_max_seconds``; a 429's ``Retry-After`` is honoured, within the same cap);
- 401/403 means the key is wrong: ``LLMAuthError`` (a ``BadInput``) at once, no retries;
- ``response_format`` "auto" asks for a JSON schema, and if the server rejects that (HTTP 400)
  for a JSON object, then for nothing: the answer is validated by the caller either way;
- an answer that is not valid JSON (or was cut off at ``max_tokens``) gets one repair request;
- waits are sliced so the caller's ``on_wait`` (the stage's progress callback) can cancel the job.
Every other failure is an ``LLMError`` so the enricher can fall back to the offline heuristic.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import re
import time
from collections.abc import Callable

import requests

from pipeline.backoff import Backoff
from pipeline.config import LLMSettings
from pipeline.errors import BadInput, PipelineError

CHARS_PER_TOKEN = 3          # English runs ~4 characters a token; counting 3 keeps prompts safely in budget
WAIT_SLICE_SECONDS = 0.25
FORMAT_FALLBACKS = {"auto": ("json_schema", "json_object", "none"), "json_schema": ("json_schema",),
                    "json_object": ("json_object",), "none": ("none",)}


class LLMError(PipelineError):
    """The endpoint could not give a usable answer; the enricher falls back to the heuristic."""


class LLMUnavailable(LLMError):
    """Retries ran out, or the endpoint refused the request for a reason retrying will not fix."""


class LLMBadAnswer(LLMError):
    """The answer was not the JSON we asked for, even after a repair request."""


class LLMAuthError(BadInput):
    """HTTP 401/403: the API key is missing or wrong. Fails the job; the operator must fix the key."""


class _Retryable(Exception):
    def __init__(self, problem: str, delay: float | None = None):
        super().__init__(problem)
        self.delay = delay


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def endpoint(base_url: str) -> str:
    """``http://host/v1`` -> ``http://host/v1/chat/completions``; a bare host gets ``/v1`` too."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def parse_json_object(content: str) -> dict:
    """The JSON object in a model's answer, also when wrapped in a ```json fence or chatter."""
    text = content.strip()
    fenced = re.search(r"```(?:json|JSON)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    if not text.startswith("{") and "{" in text:
        text = text[text.index("{"):]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:   # chatter after the object: decode just the first value
            value, _ = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"it is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"it is a JSON {type(value).__name__}, not an object")
    return value


class ChatClient:
    """One endpoint, its settings, and a running count of requests and retries (for the job's notes)."""

    def __init__(self, settings: LLMSettings, on_wait: Callable[[], None] | None = None,
                 rng: random.Random | None = None):
        self.settings = settings
        self.url = endpoint(settings.base_url)
        self.on_wait = on_wait or (lambda: None)
        self.rng = rng or random.Random()
        self.formats = list(FORMAT_FALLBACKS[settings.response_format])
        self.requests = 0
        self.retries = 0
        self.repairs = 0

    def chat_json(self, messages: list[dict], schema: dict, validate: Callable[[dict], dict]) -> dict:
        """Ask for a JSON object; parse and ``validate`` it (ValueError = invalid), one repair attempt."""
        content, finish = self.complete(messages, schema)
        try:
            return validate(parse_json_object(content))
        except ValueError as problem:
            self.repairs += 1
            cut = " It was cut off before the end; answer more briefly." if finish == "length" else ""
            repair = messages + [   # the broken answer itself is left out: it could overflow the context
                {"role": "user", "content": f"Your previous answer could not be used: {problem}.{cut} Reply again "
                                            "with only the complete JSON object, no code fence and no other text."}]
            content, finish = self.complete(repair, schema)
            try:
                return validate(parse_json_object(content))
            except ValueError as again:
                ending = " (cut off at llm.max_tokens)" if finish == "length" else ""
                raise LLMBadAnswer(f"The LLM's answer was unusable even after a repair request: {again}{ending}.") \
                    from None

    def complete(self, messages: list[dict], schema: dict) -> tuple[str, str | None]:
        """POST a chat completion with retries; return (message content, finish_reason)."""
        attempt, last_problem = 0, ""
        while True:
            try:
                return self._post(messages, schema)
            except _Retryable as exc:
                last_problem = str(exc)
                if attempt >= self.settings.max_retries:
                    tries = attempt + 1
                    raise LLMUnavailable(f"The LLM endpoint {self.url} kept failing ({last_problem}; "
                                         f"{tries} attempt{'s' if tries > 1 else ''}).") from None
                delay = self.backoff(attempt) if exc.delay is None else min(exc.delay,
                                                                            self.settings.backoff_max_seconds)
                attempt += 1
                self.retries += 1
                self._wait(delay)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half the doubled delay fixed, half random."""
        return Backoff(self.settings.backoff_seconds, 2.0, self.settings.backoff_max_seconds,
                       spread=(0.5, 1.0)).delay(attempt, self.rng)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.on_wait()
            time.sleep(min(WAIT_SLICE_SECONDS, left))
        self.on_wait()

    def _payload(self, messages: list[dict], schema: dict) -> dict:
        payload = {"model": self.settings.model, "messages": messages, "max_tokens": self.settings.max_tokens,
                   "temperature": self.settings.temperature, "stream": False}
        mode = self.formats[0]
        if mode == "json_schema":
            payload["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "clipdesk_enrichment", "schema": schema}}
        elif mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.settings.api_key_env, "").strip() if self.settings.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, messages: list[dict], schema: dict) -> tuple[str, str | None]:
        while True:
            self.on_wait()
            self.requests += 1
            try:
                response = requests.post(self.url, json=self._payload(messages, schema), headers=self._headers(),
                                         timeout=self.settings.timeout_seconds)
            except requests.Timeout:
                raise _Retryable(f"no answer within {self.settings.timeout_seconds:g} s") from None
            except requests.ConnectionError:
                raise _Retryable("could not connect") from None
            status = response.status_code
            if status in (401, 403):
                raise LLMAuthError(
                    f"The LLM endpoint {self.url} rejected the API key (HTTP {status}). Put a valid key in the "
                    f"{self.settings.api_key_env} environment variable, or set llm.base_url to \"\" to use the "
                    "offline enricher.")
            if status == 429:
                raise _Retryable("HTTP 429, too many requests", retry_after(response.headers.get("Retry-After")))
            if status >= 500:
                raise _Retryable(f"HTTP {status}")
            if status == 400 and len(self.formats) > 1:   # the server does not take this response_format
                self.formats.pop(0)
                continue
            if status >= 400:
                raise LLMUnavailable(f"The LLM endpoint {self.url} refused the request (HTTP {status}: "
                                     f"{_error_message(response)}).")
            try:
                choice = response.json()["choices"][0]
                return str(choice["message"]["content"] or ""), choice.get("finish_reason")
            except (ValueError, KeyError, IndexError, TypeError):
                raise _Retryable(f"HTTP {status} without a chat completion in the body") from None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason or "no detail"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or body)[:200]
