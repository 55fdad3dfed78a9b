package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"
)

// runFirstGet GETs -base + tag for each tag PREFIX{start} … PREFIX{start+n-1},
// one at a time on one keep-alive connection, and prints one JSON line with
// the latencies (µs) of those first GETs and of a second, warm pass over the
// same tags. Each tag must be a combination the registry has never composed;
// a status other than 200 is an error.
func runFirstGet(args []string) error {
	fs := flag.NewFlagSet("firstget", flag.ContinueOnError)
	base := fs.String("base", "", "URL up to the reference, e.g. http://127.0.0.1:5000/v2/env/manifests/")
	prefix := fs.String("prefix", "php-8.2_p", "tag prefix; tags are PREFIX0 … PREFIX(N-1)")
	start := fs.Int("start", 0, "first tag number")
	n := fs.Int("n", 50, "number of tags")
	accept := fs.String("accept", "application/vnd.oci.image.index.v1+json", "Accept header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	get := func(tag string) (time.Duration, error) {
		req, err := http.NewRequest(http.MethodGet, *base+tag, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept", *accept)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", tag, resp.Status)
		}
		return d, nil
	}
	// Open the connection first, so that no first GET pays for the dial.
	u, err := url.Parse(*base)
	if err != nil {
		return err
	}
	u.Path, u.RawQuery = "/v2/", ""
	if resp, err := client.Get(u.String()); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var first, warm []time.Duration
	for pass := range 2 {
		for i := range *n {
			d, err := get(*prefix + strconv.Itoa(*start+i))
			if err != nil {
				return err
			}
			if pass == 0 {
				first = append(first, d)
			} else {
				warm = append(warm, d)
			}
		}
	}
	us := func(ds []time.Duration) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			out[i] = float64(d.Nanoseconds()) / 1e3
		}
		return out
	}
	out := map[string]any{"kind": "firstget", "n": *n, "first_us": us(first), "warm_us": us(warm)}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// dist summarises latencies: nearest-rank p50 and p90, min and max.
func dist(xs []float64) map[string]float64 {
	if len(xs) == 0 {
		return map[string]float64{"p50_us": math.NaN(), "p90_us": math.NaN(), "min_us": math.NaN(), "max_us": math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 { return s[int(p*float64(len(s)-1)+0.5)] }
	return map[string]float64{"p50_us": q(0.5), "p90_us": q(0.9), "min_us": s[0], "max_us": s[len(s)-1]}
}
