"""Settings & health: the config in force (secrets masked) and whether everything it needs is there."""

import shlex

import streamlit as st

from pages import _common as c
from pipeline import db
from pipeline.ops import disk, health

settings = c.settings()
st.title("Settings & health")
database = f"PostgreSQL `{db.describe(settings.app_db)}`" if settings.uses_postgres else f"SQLite `{settings.app_db}`"
st.caption(f"Config file: `{settings.source}` · data dir: `{settings.data_dir}` · database: {database}")

c.exposure_warning(settings)


@st.cache_data(ttl=300, show_spinner="Checking ffmpeg…")
def ffmpeg_check() -> dict:
    return health.ffmpeg_info()


def status_line(ok: bool | None, good: str, bad: str) -> None:
    if ok:
        st.success(good, icon=":material/check_circle:")
    elif ok is None:
        st.info(good, icon=":material/info:")
    else:
        st.error(bad, icon=":material/error:")


left, right = st.columns(2)
with left:
    st.subheader("ffmpeg")
    ff = ffmpeg_check()
    missing = [name for name, present in ff["filters"].items() if not present]
    status_line(ff["ok"], ff["version"], f"{ff['version']} — missing filters: {', '.join(missing) or '?'}")
    st.markdown(" ".join(f"`{name}` {'✓' if present else '✗'}" for name, present in ff["filters"].items()))
    st.caption(f"Binary: `{ff['path']}`")

    st.subheader("Transcription model")
    model = health.model_status(settings)
    status_line(model["available"], f"{model['engine']} · {model['model']} is available offline.",
                f"{model['engine']} · {model['model']} is {model['where']}.")
    if model["available"]:
        st.caption(f"Location: `{model['where']}`")

    st.subheader("LLM endpoint")
    if st.button("Check now", icon=":material/refresh:", key="llm_check") or "llm_status" not in st.session_state:
        with st.spinner("Contacting the endpoint…"):
            st.session_state["llm_status"] = health.llm_endpoint(settings)
    llm = st.session_state["llm_status"]
    if not llm["configured"]:
        status_line(None, llm["detail"], "")
    else:
        status_line(llm["reachable"], f"{llm['url']} answers ({llm['detail']}).",
                    f"{llm['url']} is not reachable: {llm['detail']}")

with right:
    st.subheader("Storage")
    space = health.disk(settings)
    free_share = space["free"] / space["total"] if space["total"] else 0
    st.progress(1 - free_share, text=f"{c.human_bytes(space['free'])} free of {c.human_bytes(space['total'])} "
                                     f"on the disk holding the data dir")
    if free_share < 0.05:
        st.warning("Less than 5% of the disk is free; renders may fail.", icon=":material/warning:")
    used = disk.usage(settings)   # issue 21: where the space goes, and what retention frees next
    if used["warning"]:
        st.warning(used["warning"], icon=":material/warning:")
    st.markdown(" · ".join(f"{label}: **{c.human_bytes(used[key])}**" for label, key in (
        ("Sources", "source"), ("Audio", "audio"), ("Renders", "renders"), ("Transcripts and other", "other"),
        ("App database", "database"), ("Queue database", "queue_database"))))
    frees = used["policy_frees_next"]
    if any(frees["policy"].values()):
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in
                          ((k, v["items"]) for k, v in frees["by_kind"].items()))
        st.caption(f"Retention ({', '.join(f'{k} {v:g}' for k, v in frees['policy'].items())}) frees "
                   f"**{c.human_bytes(frees['bytes'])}** at its next run" + (f": {kinds}." if kinds else "."))
    else:
        st.caption("Retention is off (every `retention.*_days` is 0): nothing is ever deleted automatically.")

    st.subheader("Workers by host")
    hosts = health.workers_by_host(settings)
    if not hosts:
        st.info("No worker has started yet.", icon=":material/info:")
    for host in hosts:
        line = (f"**{host['host']}** · {host['status']} · {host['consumers_alive']} consumer(s),"
                f" {host['slots_alive']} slot(s) alive · last heartbeat {host['last_heartbeat_age']:.0f} s ago")
        (st.success if host["status"] == "alive" else st.warning)(line, icon=":material/dns:")
        st.markdown("\n".join(f"- `{c['worker_id']}` · {c['slots']} slot(s) · {c['status']} ·"
                               f" heartbeat {c['heartbeat_age']:.0f} s ago" for c in host["consumers"]))
    st.caption(f"This machine is `{settings.worker.host_id}` (`worker.host_id`, env `CLIPDESK_HOST_ID`).")
    st.markdown("Start a worker in the project folder with:")
    st.code(shlex.join(health.worker_command(settings)), language="bash")
    st.caption("Or run worker and dashboard together with `make run` (`python -m pipeline serve`).")

st.subheader("Effective configuration")
st.caption("Every value in force, defaults included. Secrets are masked.")
st.json(health.effective_config(settings), expanded=2)
