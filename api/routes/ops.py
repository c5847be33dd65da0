"""Operations: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus) and ``/v1/stats``."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api import problems
from api.deps import ClientDep, SettingsDep
from pipeline import db, jobs
from pipeline.ops import health, metrics

router = APIRouter(tags=["operations"])
FFMPEG_CHECK_SECONDS = 60.0


@router.get("/healthz", summary="The API process is up")
def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="Ready: database reachable, ffmpeg usable, at least one live worker")
def readyz(settings: SettingsDep):
    checks = {}
    try:
        with db.session(settings.app_db) as conn:
            conn_ok = db.last_event_id(conn) >= 0
        checks["database"] = {"ok": conn_ok}
    except Exception as exc:   # any failure to read the DB means not ready, and says why
        checks["database"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    checks["ffmpeg"] = _ffmpeg_check()
    if checks["database"]["ok"]:
        overview = jobs.queue_overview(settings)
        checks["workers"] = {"ok": overview["workers_alive"] > 0, "alive": overview["workers_alive"]}
    else:
        checks["workers"] = {"ok": False, "detail": "unknown without the database"}
    failing = [name for name, check in checks.items() if not check["ok"]]
    if failing:
        return problems.response(503, f"Not ready: {', '.join(failing)} not OK"
                                      f"{' (no live worker)' if 'workers' in failing else ''}.", "/readyz",
                                 ready=False, checks=checks)
    return {"ready": True, "checks": checks}


def _ffmpeg_check(_cache={}) -> dict:   # noqa: B006 - one probe of ffmpeg a minute, not one per request
    if _cache.get("until", 0) < time.monotonic():
        info = health.ffmpeg_info()
        _cache.update(until=time.monotonic() + FFMPEG_CHECK_SECONDS,
                      value={"ok": info["ok"], "version": info["version"]})
    return _cache["value"]


class _Collector:
    """Reads one ``metrics.snapshot`` per scrape."""

    def __init__(self, settings):
        self.settings = settings

    def collect(self):
        snap = metrics.snapshot(self.settings)
        jobs_gauge = GaugeMetricFamily("clipdesk_jobs", "Jobs by status", labels=["status"])
        for status, count in snap.jobs_by_status.items():
            jobs_gauge.add_metric([status], count)
        depth = GaugeMetricFamily("clipdesk_queue_depth", "Jobs waiting to start or retry, by priority",
                                  labels=["priority"])
        for priority, count in sorted(snap.queue_depth_by_priority.items()):
            depth.add_metric([str(priority)], count)
        running = GaugeMetricFamily("clipdesk_running_units", "Units running now (a stage, or one clip's render)",
                                    labels=["kind"])
        for kind, count in snap.running_units.items():
            running.add_metric([kind], count)
        rates = HistogramMetricFamily("clipdesk_stage_seconds_per_media_second",
                                      "Seconds of work per second of media, per finished stage run (render: per clip)",
                                      labels=["stage"])
        for stage, (buckets, total) in sorted(snap.stage_rates.items()):
            rates.add_metric([stage], buckets, total)
        failures = GaugeMetricFamily("clipdesk_job_failures", "Failed jobs by error kind", labels=["kind"])
        for kind, count in sorted(snap.failures_by_kind.items()):
            failures.add_metric([kind], count)
        hooks = GaugeMetricFamily("clipdesk_webhook_deliveries", "Webhook deliveries by result", labels=["result"])
        for result, count in sorted(snap.webhook_deliveries.items()):
            hooks.add_metric([result], count)
        workers = GaugeMetricFamily("clipdesk_live_workers", "Consumer processes alive by the liveness rule")
        workers.add_metric([], snap.live_workers)
        yield from (jobs_gauge, depth, running, rates, failures, hooks, workers)


@router.get("/metrics", summary="Prometheus text format", response_class=Response)
def prometheus(settings: SettingsDep, client: ClientDep):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(settings))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/stats", summary="Counts by status, success rate, processing time, seconds per media hour, latency,"
                               " live workers")
def stats(settings: SettingsDep, client: ClientDep):
    return metrics.stats(settings)
