#!/usr/bin/env bash
# bench/layerforms.sh: what a stack's layer form (layerCompression gzip,
# none or zstd) does to a php change on containerd, the client that reads
# all three here (this machine's Docker 20.10 does not read zstd; issue 21,
# item 2). Not part of CI (about 10 minutes with a warm Debian download
# cache); run it by hand, as root:
#
#   bash bench/layerforms.sh
#
# What it does, in one run:
#   1. Builds envreg, and publishes into a fresh data directory, for
#      linux/amd64 only, the bundled base, the two newest php 8.2 patches,
#      nodejs 18 and graphicsmagick from bookworm, each layer in all three
#      forms (--uncompressed-layers --zstd-layers; the Debian download
#      cache is kept in $LAYERFORMS_WORK). Stacks: env (gzip, the default),
#      envtar (none), envzst (zstd).
#   2. Starts a containerd of its own (its own root, state and socket under
#      $LAYERFORMS_WORK and /tmp, no CRI plugin, the overlayfs
#      snapshotter), stopped by PID at exit; the machine's engine and its
#      containerd are never touched.
#   3. Per form: a cold pull (ctr images pull, which fetches and unpacks
#      every layer, checking each against its diffID) of
#      php-8.2.X_node-18_gm; then $LAYERFORMS_CHANGES changes in each
#      direction, alternating X and Y, interleaved between the forms: the
#      node holds the old environment, the new image is removed (with the
#      content and snapshots only it used: ctr images rm --sync), and the
#      change is the pull of the new tag, which fetches and unpacks the php
#      layer only. Then ctr run of the new image prints php's version (when
#      this machine can run a container with containerd's runc shim).
#   4. Bytes per change from the registry's served-bytes counter, layer
#      sizes from the catalog. Writes the table into the layer-forms
#      section of $LAYERFORMS_OUT (docs/benchmarks.md), replacing it.
#
# Environment (defaults in brackets):
#   LAYERFORMS_WORK [bench/.work/layerforms]  cache and binaries (kept), run data (replaced)
#   LAYERFORMS_CHANGES [3]                    changes in each direction
#   LAYERFORMS_OUT [docs/benchmarks.md]
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${LAYERFORMS_WORK:-$ROOT/bench/.work/layerforms}
CHANGES=${LAYERFORMS_CHANGES:-3}
OUT=${LAYERFORMS_OUT:-$ROOT/docs/benchmarks.md}
RUN=$WORK/run
RESULTS=$RUN/results.jsonl
START=$(date +%s)
FORMS=(gzip none zstd)
declare -A STACK=([gzip]=env [none]=envtar [zstd]=envzst)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

PIDS=()
CTRD_PID=
CTRD_DIR=
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	if [ -n "$CTRD_PID" ]; then
		kill "$CTRD_PID" 2>/dev/null || true
		for _ in $(seq 300); do
			kill -0 "$CTRD_PID" 2>/dev/null || break
			sleep 0.1
		done
	fi
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$CTRD_DIR" ]; then
		# The overlayfs snapshotter's and the shim's mounts are ours.
		findmnt -rn -o TARGET | grep -E "^($CTRD_DIR|$RUN/containerd)/" | sort -r | xargs -r -n1 umount 2>/dev/null || true
		rm -rf "$CTRD_DIR"
	fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. envreg ------------------------------------------------------------------
for t in jq curl containerd ctr go; do
	command -v "$t" >/dev/null || die "$t is required"
done
[ "$(id -u)" = 0 ] || die "run as root: a containerd of its own needs it"
mkdir -p "$WORK/bin"
go build -o "$WORK/bin/envreg" ./cmd/envreg
ENVREG=$WORK/bin/envreg
rm -rf "$RUN"
mkdir -p "$RUN/recipes"
DATA=$RUN/data
R=$RUN/recipes
for f in base/recipe.yaml php/8.2.yaml nodejs/18.yaml graphicsmagick/bookworm.yaml; do
	mkdir -p "$R/$(dirname "$f")"
	sed -e 's/^platforms: .*/platforms: [linux\/amd64]/' -e 's/^    keep: 3$/    keep: 2/' "$ROOT/packages/$f" >"$R/$f"
done
log "publishing base, php 8.2 (two patches), nodejs 18 and graphicsmagick for linux/amd64 in all three forms"
P0=$(date +%s)
"$ENVREG" publish --data "$DATA" --uncompressed-layers --zstd-layers --cache-dir "$WORK/cache" "$R" >"$RUN/publish.log" 2>&1 ||
	die "publishing failed: $(tail -5 "$RUN/publish.log")"
log "published in $(($(date +%s) - P0)) s"
for form in none zstd; do
	printf 'name: %s\nbase: [base]\naliases: {node: nodejs, gm: graphicsmagick}\nimage: {cmd: [/bin/sh]}\nlayerCompression: %s\n' \
		"${STACK[$form]}" "$form" >"$RUN/${STACK[$form]}.yaml"
	"$ENVREG" stack --data "$DATA" "$RUN/${STACK[$form]}.yaml" >/dev/null
done
"$ENVREG" serve --data "$DATA" --addr 127.0.0.1:0 --addr-file "$RUN/envreg.addr" --compose-budget 0 2>"$RUN/envreg.log" &
PIDS+=($!)
for _ in $(seq 300); do
	[ -s "$RUN/envreg.addr" ] && break
	sleep 0.1
done
E=$(cat "$RUN/envreg.addr")
curl -fsS "http://$E/api/v1/packages/php" >"$RUN/php.json"
mapfile -t PHP < <(jq -r '[.versions[] | select(.yanked | not) | .version | select(startswith("8.2."))] |
	sort_by(split("+")[0] | split(".") | map(tonumber)) | .[-2:][] | split("+")[0]' "$RUN/php.json")
[ "${#PHP[@]}" = 2 ] || die "the catalog has fewer than two php 8.2 versions: $(cat "$RUN/php.json")"
PREV=${PHP[0]}
NEW=${PHP[1]}
log "envreg on $E; php $PREV ↔ $NEW"
tag() { echo "php-$1_node-18_gm"; }

# Layer sizes of the php versions in each form, from the catalog's files.
for v in "${PHP[@]}"; do
	f=$(ls "$DATA/catalog/releases/php/$v"*.json | head -1)
	jq -c --arg v "$v" '.layers[0] | {kind: "layer", version: $v, gzip: .size, none: .tarSize, zstd: .zstdSize}' "$f" >>"$RESULTS"
done

# --- 2. a containerd of our own --------------------------------------------------
CTRD_DIR=$(mktemp -d /tmp/envreg-lf.XXXXXX) # short: it holds unix sockets
SOCK=$CTRD_DIR/sock
cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
containerd --config "$CTRD_DIR/config.toml" >"$RUN/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 300); do
	ctr --address "$SOCK" --timeout 2s version >/dev/null 2>&1 && break
	kill -0 "$CTRD_PID" 2>/dev/null || die "containerd exited: $(tail -5 "$RUN/containerd.log")"
	sleep 0.1
done
CTR=(ctr --address "$SOCK" --namespace envreg)
"${CTR[@]}" version >/dev/null || die "containerd did not answer on $SOCK"
ENGINE=$(ctr --address "$SOCK" version | awk '/Server:/ {s = 1} s && /Version:/ {print $2; exit}')

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) / 1e9}'; }
served_bytes() {
	curl -fsS "http://$E/metrics" | awk '
		/^envreg_http_response_bytes_total[{ ]/ && !/route="(ops|api)"/ {s += $NF}
		END {printf "%.0f", s}'
}
ref() { echo "$E/${STACK[$1]}:$(tag "$2")"; } # ref FORM VERSION
pull() { "${CTR[@]}" images pull --plain-http --snapshotter overlayfs "$1" >"$RUN/pull.log" 2>&1 || die "ctr pull $1: $(tail -5 "$RUN/pull.log")"; }
RUNS=1
run_php() { # run_php FORM VERSION: prints seconds, or null when containers cannot run here
	local t0 t1 got
	[ "$RUNS" = 1 ] || {
		echo null
		return
	}
	t0=$(now)
	if ! got=$("${CTR[@]}" run --rm --snapshotter overlayfs --net-host "$(ref "$1" "$2")" "lf$$-$RANDOM" php -r 'echo PHP_VERSION;' 2>"$RUN/run.log"); then
		log "ctr run does not work here ($(tail -1 "$RUN/run.log")): pulls only"
		RUNS=0
		echo null
		return
	fi
	t1=$(now)
	[ "$got" = "$2" ] || die "$(ref "$1" "$2") answered php $got, want $2"
	secs "$t0" "$t1"
}
record() { jq -cn "$@" | tee -a "$RESULTS" >&2; }
change() { # change FORM VERSION KIND ROUND
	local r b0 b1 t0 t1 runs
	r=$(ref "$1" "$2")
	b0=$(served_bytes)
	t0=$(now)
	pull "$r"
	t1=$(now)
	b1=$(served_bytes)
	runs=$(run_php "$1" "$2")
	record --arg form "$1" --arg to "$2" --arg kind "$3" --argjson round "$4" --argjson pull "$(secs "$t0" "$t1")" \
		--argjson run "$runs" --argjson bytes "$((b1 - b0))" \
		'{kind:$kind, form:$form, round:$round, to:$to, pull_s:$pull, run_s:$run, bytes:$bytes}'
}
remove() { "${CTR[@]}" images rm --sync "$1" >/dev/null 2>&1 || true; }

jq -cn --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" --arg prev "$PREV" --arg new "$NEW" --arg engine "$ENGINE" \
	--argjson changes "$CHANGES" --arg envreg "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{kind:"meta", date:$date, prev:$prev, new:$new, containerd:$engine, changes:$changes, envreg:$envreg, loadavg:$load}' >>"$RESULTS"

# --- 3. cold, then changes ----------------------------------------------------------
for form in "${FORMS[@]}"; do
	log "cold $form: $(ref "$form" "$PREV")"
	change "$form" "$PREV" cold 0
	remove "$(ref "$form" "$PREV")"
done
for form in "${FORMS[@]}"; do
	pull "$(ref "$form" "$PREV")"
done
VERS=("$PREV" "$NEW")
for round in $(seq $((2 * CHANGES))); do
	to=${VERS[$((round % 2))]}
	for form in "${FORMS[@]}"; do
		remove "$(ref "$form" "$to")"
		log "change $round, $form: $(ref "$form" "$to")"
		change "$form" "$to" change "$round"
	done
done

# --- 4. report ---------------------------------------------------------------------------
BEGIN='<!-- layerforms: written by bench/layerforms.sh -->'
END='<!-- /layerforms -->'
section=$(jq -rs --arg open "$BEGIN" --arg close "$END" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r2: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
def mb: if . == null then "–" else (. / 1e6 * 10 | round / 10 | tostring) + " MB" end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then "–" else (($a / $b) * 100 | round / 100 | tostring) + "×" end;
(.[] | select(.kind == "meta")) as $m
| [.[] | select(.kind == "change")] as $ch
| [.[] | select(.kind == "cold")] as $cold
| [.[] | select(.kind == "layer")] as $layers
| def med($form; $f): [$ch[] | select(.form == $form) | .[$f] | select(. != null)] | median;
  def cold($form; $f): [$cold[] | select(.form == $form) | .[$f] | select(. != null)] | median;
  def layer($form): [$layers[] | .[$form] | select(. != null)] | median;
[
  $open,
  "## Layer forms on containerd: a php change with gzip, none and zstd layers",
  "",
  "Written by [`bench/layerforms.sh`](../bench/layerforms.sh) from a run started \($m.date) (envreg at \($m.envreg); load average \($m.loadavg) at the start); rerun it rather than editing this section.",
  "A containerd of the script'"'"'s own (containerd \($m.containerd), overlayfs snapshotter) pulls from envreg on loopback; the stacks serve the same images (same diffIDs) with `layerCompression: gzip`, `none` and `zstd`.",
  "A change is `ctr images pull` of `php-\($m.new)_node-18_gm` when the node holds `php-\($m.prev)_node-18_gm` (and back, \($m.changes) times each way, interleaved between the forms): it fetches and unpacks the php layer, checking it against its diffID. Medians; the ratios are against gzip in the same run.",
  "",
  "| form | change: pull | vs gzip | bytes per change | cold pull | php layer (median of the two) | `ctr run` php -r |",
  "|---|---|---|---|---|---|---|",
  ( ["gzip", "none", "zstd"][] as $f
    | "| \($f) | \(med($f; "pull_s") | r2) s | \(ratio(med($f; "pull_s"); med("gzip"; "pull_s"))) | \(med($f; "bytes") | mb) | \(cold($f; "pull_s") | r2) s | \(layer($f) | mb) | \(med($f; "run_s") | if . == null then "not run" else (r2 + " s") end) |" ),
  "",
  "Changes, in order:",
  "",
  "| round | form | to | pull | bytes |",
  "|---|---|---|---|---|",
  ( $ch[] | "| \(.round) | \(.form) | \(.to) | \(.pull_s | r2) s | \(.bytes | mb) |" ),
  $close
] | .[]' "$RESULTS")
printf '%s\n' "$section" >"$RUN/section.md"
if grep -qF "$BEGIN" "$OUT"; then
	awk -v begin="$BEGIN" -v end="$END" -v file="$RUN/section.md" '
		$0 == begin { while ((getline line < file) > 0) print line; skip = 1; next }
		$0 == end { skip = 0; next }
		!skip' "$OUT" >"$OUT.tmp"
	mv "$OUT.tmp" "$OUT"
else
	printf '\n' >>"$OUT"
	cat "$RUN/section.md" >>"$OUT"
fi
log "wrote $OUT; results in $RESULTS; took $(($(date +%s) - START))s"
