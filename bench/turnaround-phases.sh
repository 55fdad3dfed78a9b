#!/usr/bin/env bash
# bench/turnaround-phases.sh RESULTS DOCKERD_LOG: where each timed docker
# pull of bench/turnaround.sh spent its time, from the debug log of the
# script's own dockerd, appended to RESULTS as "phases" lines:
#
#   resolve_s   from the start of docker pull to the first "pulling blob"
#               (CLI, daemon, index, manifest and config requests)
#   download_s  from the first "pulling blob" to the last "Downloaded …
#               to tempfile" (Docker 20.10 downloads up to 3 layers at once)
#   apply_s     from the first "Applying tar" to the last "Applied tar":
#               decompressing, untarring into the storage driver's diff
#               directory and hashing the diff ID, one layer after the other
#   rest_s      from there to the end of docker pull (image config, tag)
#
# Docker's timestamps are UTC seconds of the day; the pull's start_ns is
# converted the same way (a pull across midnight is skipped).
set -euo pipefail
export LC_ALL=C
RESULTS=$1
LOG=$2

jq -r 'select(.start_ns != null and .pull_s > 0.05) | "\(.kind) \(.way) \(.round) \(.start_ns) \(.pull_s)"' "$RESULTS" |
	while read -r kind way round start pull; do
		awk -v kind="$kind" -v way="$way" -v round="$round" -v start="$start" -v pull="$pull" '
			BEGIN {
				t0 = (start / 1e9) % 86400
				t1 = t0 + pull
			}
			match($0, /^time="[0-9-]+T[0-9:.]+Z"/) {
				split(substr($0, 18, RLENGTH - 19), hms, ":")
				t = hms[1] * 3600 + hms[2] * 60 + hms[3]
				if (t < t0 || t > t1) next
				if (/msg="pulling blob/ && first_pull == "") first_pull = t
				if (/msg="Downloaded [0-9a-f]+ to tempfile/) last_download = t
				if (/msg="Applying tar in/ && first_apply == "") first_apply = t
				if (/msg="Applied tar sha256:/) last_applied = t
			}
			END {
				if (first_pull == "" || last_applied == "" || t1 < t0) exit
				printf "{\"kind\":\"phases\",\"of\":\"%s\",\"way\":\"%s\",\"round\":%d,\"pull_s\":%.3f,\"resolve_s\":%.3f,\"download_s\":%.3f,\"apply_s\":%.3f,\"rest_s\":%.3f}\n",
					kind, way, round, pull, first_pull - t0, last_download - first_pull, last_applied - first_apply, t1 - last_applied
			}' "$LOG"
	done >>"$RESULTS"
