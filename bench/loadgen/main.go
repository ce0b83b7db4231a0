// Command loadgen drives an SSE server on 127.0.0.1: it holds N subscribers on
// one channel, publishes events stamped with their send time at one or more
// rates, and prints JSON lines on stdout: "connected", one "step" per rate
// and "done". Every loop is bounded and the tool exits by itself (-deadline).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var modes = map[string]bool{"none": true, "post": true, "ndjson": true, "file": true}

type config struct {
	base     string
	subBases []string
	subHosts []string
	channel  string
	subs     int
	stalled  int
	dialers  int
	mode     string
	rates    []float64
	step     time.Duration
	drain    time.Duration
	batch    int
	pubConns int
	file     string
	hold     time.Duration
	maxP99   time.Duration
	streak   int
	deadline time.Duration
	view     viewers
	noWait   bool
}

func parseFlags(args []string) (config, error) {
	var cfg config
	var rates string
	flags := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var subURLs, board string
	cfg.view.register(flags, &board)
	flags.StringVar(&cfg.base, "url", "http://127.0.0.1:8000", "server base URL (127.0.0.1 only)")
	flags.StringVar(&subURLs, "sub-urls", "", "more servers to spread subscribers over, comma-separated")
	flags.StringVar(&cfg.channel, "channel", "bench", "channel to subscribe and publish to")
	flags.IntVar(&cfg.subs, "subs", 100, "subscribers")
	flags.IntVar(&cfg.stalled, "stalled", 0, "more subscribers that send their request and never read")
	flags.IntVar(&cfg.dialers, "dialers", 64, "connections opened at the same time")
	flags.StringVar(&cfg.mode, "mode", "post", "publish by: none, post, ndjson or file")
	flags.StringVar(&rates, "rates", "50", "events/s, comma-separated: one step per rate")
	flags.DurationVar(&cfg.step, "step", 10*time.Second, "duration of each step")
	flags.DurationVar(&cfg.drain, "drain", 3*time.Second, "longest wait for late events after a step")
	flags.IntVar(&cfg.batch, "batch", 50, "events per NDJSON POST")
	flags.IntVar(&cfg.pubConns, "pub-conns", 4, "keep-alive publishing connections")
	flags.StringVar(&cfg.file, "file", "", "file to append lines to (mode file)")
	flags.DurationVar(&cfg.hold, "hold", 0, "how long to hold idle subscribers (mode none)")
	flags.DurationVar(&cfg.maxP99, "max-p99", 250*time.Millisecond, "a step fails above this p99")
	flags.IntVar(&cfg.streak, "stop-after", 2, "stop stepping after this many failed steps in a row")
	flags.DurationVar(&cfg.deadline, "deadline", 5*time.Minute, "exit, whatever happens, after this")
	flags.BoolVar(&cfg.noWait, "no-wait", false, "skip polling /api/channels (serve --workers N: each worker counts its own)")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	if err := cfg.view.check(board); err != nil {
		return cfg, err
	}
	bases := []string{cfg.base}
	if subURLs != "" {
		bases = append(bases, strings.Split(subURLs, ",")...)
	}
	for _, base := range bases {
		parsed, err := url.Parse(strings.TrimSpace(base))
		if err != nil || parsed.Scheme != "http" || parsed.Hostname() != "127.0.0.1" {
			return cfg, fmt.Errorf("-url and -sub-urls must be http://127.0.0.1:PORT, got %q", base)
		}
		cfg.subBases = append(cfg.subBases, strings.TrimSpace(base))
		cfg.subHosts = append(cfg.subHosts, parsed.Host)
	}
	for _, text := range strings.Split(rates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || rate <= 0 {
			return cfg, fmt.Errorf("-rates: bad rate %q", text)
		}
		cfg.rates = append(cfg.rates, rate)
	}
	switch {
	case !modes[cfg.mode]:
		return cfg, fmt.Errorf("-mode: expected none, post, ndjson or file, got %q", cfg.mode)
	case cfg.mode == "file" && cfg.file == "":
		return cfg, errors.New("-mode file needs -file")
	case cfg.subs < 1 || cfg.dialers < 1 || cfg.pubConns < 1 || cfg.batch < 1:
		return cfg, errors.New("-subs, -dialers, -pub-conns and -batch must be at least 1")
	case cfg.stalled < 0:
		return cfg, errors.New("-stalled must be 0 or more")
	}
	return cfg, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "storm" {
		if err := runStorm(os.Args[2:]); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen storm:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	time.AfterFunc(cfg.deadline, func() {
		fmt.Fprintln(os.Stderr, "loadgen: deadline reached")
		os.Exit(3)
	})
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func emit(record map[string]any) {
	line, _ := json.Marshal(record)
	fmt.Println(string(line))
}

func run(cfg config) error {
	subs := &pool{
		hosts:     cfg.subHosts,
		path:      func(i int) string { return cfg.view.path(cfg.channel, i) },
		dialers:   cfg.dialers,
		unstamped: cfg.view.unstamped(),
	}
	started := time.Now()
	subs.connect(cfg.subs)
	defer subs.close()
	connected := len(subs.conns)
	if connected == 0 {
		return fmt.Errorf("no subscriber connected: %v", subs.failures)
	}
	stalled := openStalled(cfg.subHosts[0], subs.path(0), cfg.stalled)
	defer closeAll(stalled)
	if cfg.noWait {
		// Pulseboard places the subscription before the response starts: connected is subscribed.
	} else if err := waitSubscribed(cfg, connected+len(stalled), 60*time.Second); err != nil {
		return err
	}
	emit(map[string]any{
		"event":          "connected",
		"subs":           connected,
		"stalled":        len(stalled),
		"failed":         cfg.subs - connected,
		"failures":       subs.failures,
		"connect_s":      time.Since(started).Seconds(),
		"connect_p50_ms": ms(subs.connectQuantile(0.5)),
		"connect_p99_ms": ms(subs.connectQuantile(0.99)),
	})
	if cfg.mode == "none" {
		time.Sleep(cfg.hold)
		emit(map[string]any{"event": "done", "disconnects": subs.disconnects.Load()})
		return nil
	}
	pub, err := newPublisher(cfg)
	if err != nil {
		return err
	}
	stoppedBy, failed := "", 0
	for _, rate := range cfg.rates {
		result := runStep(cfg, subs, pub, rate, connected)
		result["failed"] = failing(result, cfg.maxP99)
		emit(result)
		if stoppedBy = result["failed"].(string); stoppedBy == "" {
			failed = 0
		} else if failed++; failed >= cfg.streak {
			break
		}
	}
	emit(map[string]any{
		"event":       "done",
		"stopped_by":  stoppedBy,
		"stale":       subs.stale.Load(),
		"disconnects": subs.disconnects.Load(),
	})
	return nil
}

// waitSubscribed polls GET /api/channels until the channel counts want subscribers.
func waitSubscribed(cfg config, want int, limit time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	var seen int
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		seen = subscribersOf(client, cfg)
		if seen >= want {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%d of %d subscribers registered after %s", seen, want, limit)
}

// subscribersOf sums the channel's subscribers over every server subscribers were spread on.
func subscribersOf(client *http.Client, cfg config) int {
	total := 0
	for _, base := range cfg.subBases {
		total += subscribersAt(client, base, cfg.channel)
	}
	return total
}

func subscribersAt(client *http.Client, base string, name string) int {
	response, err := client.Get(base + "/api/channels")
	if err != nil {
		return 0
	}
	defer response.Body.Close()
	var listing struct {
		Channels []struct {
			Name        string `json:"name"`
			Subscribers int    `json:"subscribers"`
		} `json:"channels"`
	}
	if json.NewDecoder(response.Body).Decode(&listing) != nil {
		return 0
	}
	for _, channel := range listing.Channels {
		if channel.Name == name {
			return channel.Subscribers
		}
	}
	return 0
}

// runStep publishes at rate for cfg.step, waits for late events, and measures.
func runStep(cfg config, subs *pool, pub *publisher, rate float64, connected int) map[string]any {
	stats := &stepStats{startNs: time.Now().UnixNano()}
	alive := connected - int(subs.disconnects.Load())
	cutBefore := subs.disconnects.Load()
	cpuBefore := cpuSeconds()
	subs.current.Store(stats)
	published := pub.run(rate, cfg.step)
	expected := cfg.view.expected(published.Accepted, alive)
	for deadline := time.Now().Add(cfg.drain); time.Now().Before(deadline); {
		if stats.received.Load() >= expected {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	subs.current.Store(nil)
	wall := float64(time.Now().UnixNano()-stats.startNs) / 1e9
	received := stats.received.Load()
	deliveryWindow := float64(stats.lastNs.Load()-stats.startNs) / 1e9
	return map[string]any{
		"event":           "step",
		"rate":            rate,
		"subs":            alive,
		"publish":         published,
		"publish_rate":    float64(published.Accepted) / maxFloat(published.Elapsed, cfg.step.Seconds()),
		"expected":        expected,
		"received":        received,
		"unstamped":       stats.unstamped.Load(),
		"loss":            expected - received,
		"delivered_per_s": float64(received) / maxFloat(deliveryWindow, cfg.step.Seconds()),
		"p50_ms":          minFloat(stats.latency.quantile(0.50)/1000, float64(stats.maxNs.Load())/1e6),
		"p99_ms":          minFloat(stats.latency.quantile(0.99)/1000, float64(stats.maxNs.Load())/1e6),
		"max_ms":          float64(stats.maxNs.Load()) / 1e6,
		"disconnects":     subs.disconnects.Load() - cutBefore,
		"loadgen_cpu":     (cpuSeconds() - cpuBefore) / wall,
		"wall_s":          wall,
		"latency_ms":      stats.latency.buckets(),
	}
}

// failing names why a step failed: lost events, cut subscribers or a high p99; "" if it passed.
func failing(step map[string]any, maxP99 time.Duration) string {
	switch {
	case step["disconnects"].(int64) > 0:
		return "disconnects"
	case step["loss"].(int64) > 0:
		return "loss"
	case step["p99_ms"].(float64) > ms(maxP99):
		return "p99"
	}
	return ""
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func maxFloat(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

func minFloat(a, b float64) float64 {
	if a < b {
		return a
	}
	return b
}
