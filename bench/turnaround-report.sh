#!/usr/bin/env bash
# bench/turnaround-report.sh RESULTS OUT: the turnaround section of OUT
# (docs/benchmarks.md) from bench/turnaround.sh's results, followed by
# bench/turnaround-analysis.md when it exists, replacing the section
# between the turnaround markers (appended when OUT has none).
set -euo pipefail
export LC_ALL=C
RESULTS=$1
OUT=$2
BEGIN='<!-- turnaround: written by bench/turnaround.sh -->'
END='<!-- /turnaround -->'

section=$(jq -rs --arg open "$BEGIN" --arg close "$END" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r1: if . == null then "–" else (. * 10 | round / 10 | tostring) end;
def r2: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
def mb: if . == null then "–" else (. / 1e6 * 10 | round / 10 | tostring) + " MB" end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then "–" else (($a / $b) * 10 | round / 10 | tostring) + "×" end;
(.[] | select(.kind == "meta")) as $m
| [.[] | select(.kind == "change")] as $ch
| [.[] | select(.kind == "cold")] as $cold
| [.[] | select(.kind == "background") | "\(.when): \(.loadavg)"] as $bg
| def med($way; $f): [$ch[] | select(.way == $way) | .[$f] | select(. != null)] | median;
  def cold($way; $f): [$cold[] | select(.way == $way) | .[$f] | select(. != null)] | median;
  def wayname($w): {"A": "A: docker build", "B": "B: envreg (gzip layers)", "B-tar": "B: envreg, layers uncompressed (layerCompression: none)", "B-split": "B: envreg, php split: its unchanged libraries in a layer of their own", "B-pre": "B: envreg, prefetched (only docker run at the switch)"}[$w] // $w;
  [$m.ways[] | select(. != "A")] as $bs
| [
  $open,
  "## Turnaround: a php change, docker build against envreg",
  "",
  "Written by [`bench/turnaround.sh`](../bench/turnaround.sh) from a run started \($m.date) (envreg at \($m.envreg)); rerun it rather than editing this section.",
  "One run on this machine, on a Docker engine of the script'"'"'s own (Docker \($m.engine), storage driver \($m.driver)), on loopback:",
  "php \($m.prev) ↔ \($m.new) (Debian \($m.debian_prev) ↔ \($m.debian_new)), \($m.changes) changes in each direction, alternating,",
  "every way measured at every change, interleaved. The node holds the old environment when a change starts. Medians over the changes;",
  "the machine is shared (2 cores, other jobs running), so the ratios, measured side by side in one run, are what this section is for.",
  "",
  "* A: `docker build --no-cache --network host --build-arg PHP_VERSION=…` of [bench/Dockerfile.turnaround](../bench/Dockerfile.turnaround) on a `debootstrap --variant=minbase` bookworm imported with `docker import`, then `docker run --rm --network none IMAGE php -r '"'"'echo PHP_VERSION;'"'"'`. Bytes: the changed (RUN) layer gzipped (`gzip -6`); the build itself downloads the .debs and package lists from the Debian archive.",
  "* B: `docker pull` of the new tag (`env:php-8.2.Y_node-18_gm`) then the same `docker run`. Bytes: the delta of envreg'"'"'s `envreg_http_response_bytes_total` over the routes a pull uses (manifests, config and layers; not the script'"'"'s own reads of `/metrics` and the API).",
  "* The levers, each on its own: B-tar is stack `envtar` with `layerCompression: none`; B-split is stack `envsplit`, whose php is published as two packages, `phpdeps` (the libraries php8.2-cli needs besides the php8.2-* packages: libicu72, libxml2, …, unchanged by a php patch) and `phpslim` (the php8.2-* packages on top), recipes the script writes from the bundled ones (linux/amd64 only); B-pre pins the new environment with the provisioning API (`from` the old one), pulls it by digest ahead of time (the prefetch, not in the switch), and the switch is `docker run` alone.",
  "* Cold: the engine holds nothing. A: `docker import` of the base tar + build + run; B: pull of the whole image + run.",
  "* Background load average (1, 5, 15 min): " + ($bg | join("; ")),
  "",
  "| measurement | " + ([$m.ways[] | wayname(.)] | join(" | ")) + " |",
  "|---|" + ([$m.ways[] | "--:"] | join("|")) + "|",
  "| change, end to end (s) | " + ([$m.ways[] | med(.; "total_s") | r2] | join(" | ")) + " |",
  "| change, build (A) or pull (B) (s) | " + ([$m.ways[] | med(.; "pull_s") | r2] | join(" | ")) + " |",
  "| change, docker run (s) | " + ([$m.ways[] | med(.; "run_s") | r2] | join(" | ")) + " |",
  "| change, prefetch before the switch (s, not in the switch) | " + ([$m.ways[] | if . == "B-pre" then med(.; "prefetch_s") | r2 else "–" end] | join(" | ")) + " |",
  "| prefetch: blobs and bytes the API'"'"'s from answer listed / blob bytes the prefetch pulled | " + ([$m.ways[] | if . == "B-pre" then "\(med(.; "prefetch_listed_blobs") // "–") blob(s), \(med(.; "prefetch_listed_bytes") | mb) / \(med(.; "prefetch_blob_bytes") | mb)" else "–" end] | join(" | ")) + " |",
  "| bytes a node downloads per change | " + ([$m.ways[] | if . == "B-pre" then "(\(med(.; "bytes") | mb) at the switch)" else med(.; "bytes") | mb end] | join(" | ")) + " |",
  "| cold, end to end (s) | " + ([$m.ways[] | cold(.; "total_s") | r2] | join(" | ")) + " |",
  "| cold, import + build (A) or pull (B) (s) | " + ([$m.ways[] | cold(.; "pull_s") | r2] | join(" | ")) + " |",
  "| cold, docker run (s) | " + ([$m.ways[] | cold(.; "run_s") | r2] | join(" | ")) + " |",
  "| cold, bytes | " + ([$m.ways[] | if . == "A" then "–" else cold(.; "bytes") | mb end] | join(" | ")) + " |",
  "| image size (docker image inspect) | " + ([$m.ways[] | med(.; "image_bytes") | mb] | join(" | ")) + " |",
  "",
  "Ratios (A / B, from the medians above):",
  "",
  "| B way | change end to end | build vs pull alone | bytes per change | cold end to end | the lever: B'"'"'s pull / this way'"'"'s pull at the switch | B'"'"'s change / this way'"'"'s change |",
  "|---|--:|--:|--:|--:|--:|--:|",
  ($bs[] as $b | "| \(wayname($b)) | \(ratio(med("A"; "total_s"); med($b; "total_s"))) | \(if $b == "B-pre" then "–" else ratio(med("A"; "pull_s"); med($b; "pull_s")) end) | \(if $b == "B-pre" then "–" else ratio(med("A"; "bytes"); med($b; "bytes")) end) | \(ratio(cold("A"; "total_s"); cold($b; "total_s"))) | \(if $b == "B" then "1×" elif $b == "B-pre" then "∞ (no pull left)" else ratio(med("B"; "pull_s"); med($b; "pull_s")) end) | \(ratio(med("B"; "total_s"); med($b; "total_s"))) |"),
  "",
  "Where `docker pull` spends its time, from the debug log of the script'"'"'s dockerd (medians; [bench/turnaround-phases.sh](../bench/turnaround-phases.sh) defines the phases):",
  "",
  "| pull | resolve (s) | download (s) | apply: decompress + untar + diff ID, layer after layer (s) | rest (s) | total (s; download and apply overlap when several layers come) |",
  "|---|--:|--:|--:|--:|--:|",
  ([.[] | select(.kind == "phases")] as $ph | ["cold", "change"][] as $k | $bs[] as $b | [$ph[] | select(.of == $k and .way == $b)] as $rows | select($rows | length > 0) |
    "| \($k), \(wayname($b)) | \([$rows[].resolve_s] | median | r2) | \([$rows[].download_s] | median | r2) | \([$rows[].apply_s] | median | r2) | \([$rows[].rest_s] | median | r2) | \([$rows[].pull_s] | median | r2) |"),
  "",
  "Each change:",
  "",
  "| change | way | from → to | build or pull (s) | run (s) | end to end (s) | bytes |",
  "|--:|---|---|--:|--:|--:|--:|",
  ($ch | sort_by(.round)[] | "| \(.round) | \(.way) | \(.from) → \(.to) | \(.pull_s | r2) | \(.run_s | r2) | \(.total_s | r2) | \(.bytes | mb) |"),
  $close
] | join("\n")' "$RESULTS")

# The hand-written reading of the numbers (which lever did what, and why),
# kept between runs.
ANALYSIS=$(dirname "$0")/turnaround-analysis.md
if [ -f "$ANALYSIS" ]; then
	section=$(printf '%s\n' "$section" | sed '$d')
	section=$(printf '%s\n\n%s\n%s' "$section" "$(cat "$ANALYSIS")" "$END")
fi

touch "$OUT"
if grep -qF "$BEGIN" "$OUT"; then
	awk -v begin="$BEGIN" -v end="$END" -v file=/dev/stdin '
		$0 == begin {while ((getline line < file) > 0) print line; skip = 1; next}
		skip && $0 == end {skip = 0; next}
		!skip' "$OUT" <<<"$section" >"$OUT.tmp"
else
	{ cat "$OUT"; printf '\n%s\n' "$section"; } >"$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
