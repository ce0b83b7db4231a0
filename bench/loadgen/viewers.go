package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

// viewers shapes the subscribers like the dashboard's viewers (issue 18, points 1
// and 2): a stream format, a board of several channels of different kinds in
// one stream, and q= filters, distinct per subscriber up to -queries.
type viewers struct {
	format     string
	board      []string
	queries    int
	matchEvery int
	sent       *atomic.Int64
}

var boardKinds = map[string]bool{"ticker": true, "log": true, "chat": true, "notify": true}

func (v *viewers) register(flags *flag.FlagSet, board *string) {
	v.sent = new(atomic.Int64)
	flags.StringVar(&v.format, "format", "json", "stream format: json, ndjson or html")
	flags.StringVar(board, "board", "", "channels of one board stream, comma-separated, kind = name up to the first dot (ticker, log, chat, notify); publishing round-robins over them")
	flags.IntVar(&v.queries, "queries", 0, "give subscriber i the q= filter number i mod this (0: no filter)")
	flags.IntVar(&v.matchEvery, "match-every", 1, "with -queries: each filter matches one published line in this many")
}

func (v *viewers) check(board string) error {
	if board != "" {
		for _, name := range strings.Split(board, ",") {
			name = strings.TrimSpace(name)
			if !boardKinds[strings.SplitN(name, ".", 2)[0]] {
				return fmt.Errorf("-board: %q is not named after ticker, log, chat or notify", name)
			}
			v.board = append(v.board, name)
		}
	}
	switch {
	case v.format != "json" && v.format != "ndjson" && v.format != "html":
		return fmt.Errorf("-format: expected json, ndjson or html, got %q", v.format)
	case v.queries < 0 || v.matchEvery < 1:
		return errors.New("-queries must be 0 or more, -match-every at least 1")
	}
	return nil
}

// path is subscriber i's request target.
func (v *viewers) path(channel string, i int) string {
	query := url.Values{"format": {v.format}}
	if len(v.board) > 0 {
		query["channel"] = v.board
	} else {
		query["channel"] = []string{channel}
	}
	if v.queries > 0 {
		query["q"] = []string{v.pattern(i % v.queries)}
	}
	return "/events?" + query.Encode()
}

// pattern is filter number n: distinct for each n, and matching the lines whose
// tag is n mod -match-every (every line when it is 1).
func (v *viewers) pattern(n int) string {
	if v.matchEvery == 1 {
		return "bench line|nomatch" + strconv.Itoa(n)
	}
	return `\bt` + strconv.Itoa(n%v.matchEvery) + `\b|nomatch` + strconv.Itoa(n)
}

// expected is how many deliveries accepted events owe to alive subscribers.
// With -match-every K, subscribers spread evenly over the K tags (subs a multiple
// of K) and a step's lines are a multiple of K, so each gets exactly 1/K.
func (v *viewers) expected(accepted int64, alive int) int64 {
	if v.queries == 0 {
		return accepted * int64(alive)
	}
	return accepted * int64(alive) / int64(v.matchEvery)
}

// tag is what a published log line carries for the filters: t<n mod 10>.
func (v *viewers) tag() string {
	if v.queries == 0 {
		return ""
	}
	return " t" + strconv.FormatInt(v.sent.Add(1)%int64(maxInt(v.matchEvery, 10)), 10)
}

// boardEvent is the next board event: the channels in turn, each event stamped.
// A log channel's event is a line for the tailed file (file true); others a JSON body
// to POST. A ticker channel takes no turn: only its source publishes there (the
// server's ticker source fills it; its frames are counted apart, see unstamped).
func (v *viewers) boardEvent(now int64) (channel string, body []byte, file bool) {
	posted := v.posted()
	channel = posted[int(v.sent.Add(1))%len(posted)]
	stamp := "pbts" + strconv.FormatInt(now, 10)
	switch strings.SplitN(channel, ".", 2)[0] {
	case "log":
		return channel, []byte("INFO " + stamp + " GET /api/orders 200 12ms\n"), true
	case "chat":
		return channel, []byte(`{"user":"ann","text":"` + stamp + ` deploy looks good"}`), false
	}
	return channel, []byte(`{"message":"` + stamp + ` backup finished","title":"backup"}`), false
}

// tails is true when a board channel is a log (published by appending to -file).
func (v *viewers) tails() bool {
	for _, name := range v.board {
		if strings.HasPrefix(name, "log") {
			return true
		}
	}
	return false
}

// posted is the board's channels the load generator publishes to (all but tickers).
func (v *viewers) posted() []string {
	var names []string
	for _, name := range v.board {
		if !strings.HasPrefix(name, "ticker") {
			names = append(names, name)
		}
	}
	return names
}

// unstamped is the "event:" line that starts a ticker frame: counted apart, no latency.
func (v *viewers) unstamped() []byte {
	for _, name := range v.board {
		if strings.HasPrefix(name, "ticker") {
			return []byte("event: " + name + "\n")
		}
	}
	return nil
}

// observeUnstamped counts a ticker frame received during a step (unstamped_received).
func (p *pool) observeUnstamped(line []byte) {
	if !bytes.Equal(line, p.unstamped) {
		return
	}
	if stats := p.current.Load(); stats != nil {
		stats.unstamped.Add(1)
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
