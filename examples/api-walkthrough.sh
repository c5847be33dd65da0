#!/usr/bin/env bash
# Clipdesk HTTP API, end to end with curl and jq: submit -> follow live -> approve -> download.
#   API=http://127.0.0.1:8000 KEY=cdk_... ./examples/api-walkthrough.sh https://example.com/episode.mp3
# KEY may be empty when the API listens on 127.0.0.1 and no key exists (python -m pipeline api-keys create NAME).
set -euo pipefail
API=${API:-http://127.0.0.1:8000}
SOURCE=${1:?usage: $0 URL-or-server-path}
AUTH=(); [ -n "${KEY:-}" ] && AUTH=(-H "Authorization: Bearer $KEY")
call() { curl -sS --fail-with-body "${AUTH[@]}" "$@"; }

# 1. Submit. The Idempotency-Key makes a retried submit (say after a timeout) return the same job.
job=$(call -H 'content-type: application/json' -H "Idempotency-Key: walkthrough-$(date +%F)-$SOURCE" \
      -d "{\"source\": \"$SOURCE\", \"max_clips\": 3, \"aspects\": [\"9x16\"]}" "$API/v1/episodes")
if [ "$(echo "$job" | jq -r '.duplicate_of // empty')" != "" ]; then
  echo "already added as episode $(echo "$job" | jq -r .duplicate_of)"; exit 0
fi
job_id=$(echo "$job" | jq -r .job_id); episode_id=$(echo "$job" | jq -r .episode_id)
echo "job $job_id, episode $episode_id"

# 2. Follow the job live (Server-Sent Events) until it ends. A dropped connection could resume with
#    -H "Last-Event-ID: <last id seen>": no event is missed or repeated.
curl -sSN "${AUTH[@]}" "$API/v1/events?job_id=$job_id" | while IFS= read -r line; do
  case "$line" in
    data:*) event=${line#data: }
            echo "$event" | jq -r '"\(.status)\t\(.stage // "-")\t\(.progress * 100 | floor)%\t\(.message // "")"'
            case $(echo "$event" | jq -r .status) in succeeded|failed|cancelled) break ;; esac ;;
  esac
done || true   # leaving the loop closes the stream: curl then reports a write error, which is expected
status=$(call "$API/v1/jobs/$job_id" | jq -r .status)
[ "$status" = succeeded ] || { call "$API/v1/jobs/$job_id" | jq .; exit 1; }

# 3. Look at the clips, approve the two best.
call "$API/v1/episodes/$episode_id" | jq -r '.clips[] | "\(.score | floor)\t\(.clip_id)\t\(.title)"'
for clip in $(call "$API/v1/episodes/$episode_id/clips" | jq -r '.clips | sort_by(-.score) | .[:2][] | .clip_id'); do
  call -X PATCH -H 'content-type: application/json' -d '{"status": "approved"}' "$API/v1/clips/$clip" >/dev/null
done

# 4. Download: one render (resumable: -C -), the transcript, and the zip of approved clips.
first=$(call "$API/v1/episodes/$episode_id/clips" | jq -r '.clips[0].clip_id')
call -C - -o "$first-subtitled_9x16.mp4" "$API/v1/clips/$first/renders/subtitled_9x16"
call -o "$episode_id.srt" "$API/v1/episodes/$episode_id/transcript.srt"
call -o "$episode_id-approved.zip" "$API/v1/episodes/$episode_id/approved.zip"
ls -l "$first-subtitled_9x16.mp4" "$episode_id.srt" "$episode_id-approved.zip"
