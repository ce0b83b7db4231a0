package main

// `loadgen storm`: a reconnect storm. N EventSource-like clients hold a
// cursor (the id of the last event they read); the driver restarts the
// server; meanwhile events are published; then every client reconnects within
// a window, with Last-Event-ID, and the tool measures how long until each has
// caught up, how many connection attempts were refused, and how fast a probe
// URL (/healthz) answers during the storm. JSON lines on stdout: "armed"
// (every client holds a cursor: restart the server now), "down" (every stream
// ended; the retry values the server told), "published", "storm". Between
// "down" and publishing it waits for a line on stdin: the server is back.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	seqPrefix   = []byte("stormseq")
	idPrefix    = []byte("id: ")
	retryPrefix = []byte("retry: ")
)

type stormConfig struct {
	base     string
	host     string
	channel  string
	clients  int
	dialers  int
	warm     int
	events   int
	batch    int
	window   time.Duration
	resume   bool
	probe    string
	settle   time.Duration
	limit    time.Duration
	deadline time.Duration
}

func parseStormFlags(args []string) (stormConfig, error) {
	var cfg stormConfig
	flags := flag.NewFlagSet("loadgen storm", flag.ContinueOnError)
	flags.StringVar(&cfg.base, "url", "http://127.0.0.1:8000", "server base URL (127.0.0.1 only)")
	flags.StringVar(&cfg.channel, "channel", "bench", "channel to subscribe and publish to")
	flags.IntVar(&cfg.clients, "clients", 1000, "EventSource-like clients")
	flags.IntVar(&cfg.dialers, "dialers", 64, "connections opened at the same time before the restart")
	flags.IntVar(&cfg.warm, "warm", 5, "events published first, so every client holds a cursor")
	flags.IntVar(&cfg.events, "events", 1000, "events published while the clients are away")
	flags.IntVar(&cfg.batch, "batch", 100, "events per NDJSON POST while the clients are away")
	flags.DurationVar(&cfg.window, "window", time.Second, "every client reconnects at a random point of this window")
	flags.BoolVar(&cfg.resume, "resume", true, "reconnect with Last-Event-ID (false: a server without history)")
	flags.StringVar(&cfg.probe, "probe", "/healthz", "path timed every 20 ms during the storm")
	flags.DurationVar(&cfg.settle, "settle", 3*time.Second, "without resume: how long after the last reconnect to keep measuring")
	flags.DurationVar(&cfg.limit, "limit", 60*time.Second, "longest wait for the clients to catch up")
	flags.DurationVar(&cfg.deadline, "deadline", 5*time.Minute, "exit, whatever happens, after this")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	parsed, err := url.Parse(cfg.base)
	if err != nil || parsed.Scheme != "http" || parsed.Hostname() != "127.0.0.1" {
		return cfg, fmt.Errorf("-url must be http://127.0.0.1:PORT, got %q", cfg.base)
	}
	cfg.host = parsed.Host
	if cfg.clients < 1 || cfg.dialers < 1 || cfg.warm < 1 || cfg.events < 1 || cfg.batch < 1 {
		return cfg, errors.New("-clients, -dialers, -warm, -events and -batch must be at least 1")
	}
	return cfg, nil
}

// stormClient is one EventSource: its cursor, the retry values it was told, what it read.
type stormClient struct {
	lastID       string
	lastSeq      int
	retries      []int
	outOfOrder   bool
	ended        chan struct{}
	reconnectNs  int64
	caughtUpNs   int64
	refused      int
	failure      string
	readAfterRun int
}

// read parses one response body until EOF; on reaching seq `until` it records the time.
func (c *stormClient) read(body io.Reader, until int, onSeq func()) {
	lines := bufio.NewReaderSize(body, 16384)
	pendingID := ""
	for {
		line, err := lines.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		switch {
		case bytes.HasPrefix(line, idPrefix):
			pendingID = string(bytes.TrimSpace(line[len(idPrefix):]))
		case bytes.HasPrefix(line, retryPrefix):
			if value, err := strconv.Atoi(string(bytes.TrimSpace(line[len(retryPrefix):]))); err == nil {
				c.retries = append(c.retries, value)
			}
		case bytes.HasPrefix(line, dataPrefix):
			seq, ok := stormSeq(line)
			if !ok {
				continue
			}
			if seq != c.lastSeq+1 {
				c.outOfOrder = true
			}
			c.lastSeq, c.lastID = seq, pendingID
			c.readAfterRun++
			onSeq()
			if seq == until && c.caughtUpNs == 0 {
				atomic.StoreInt64(&c.caughtUpNs, time.Now().UnixNano())
			}
		}
	}
}

func stormSeq(line []byte) (int, bool) {
	at := bytes.Index(line, seqPrefix)
	if at < 0 {
		return 0, false
	}
	seq, digits := 0, 0
	for _, ch := range line[at+len(seqPrefix):] {
		if ch < '0' || ch > '9' {
			break
		}
		seq, digits = seq*10+int(ch-'0'), digits+1
	}
	return seq, digits > 0
}

// open dials, sends the request (with the cursor when resuming) and reads the response head.
func (c *stormClient) open(cfg stormConfig, path string, resume bool) (net.Conn, io.Reader, error) {
	conn, err := net.DialTimeout("tcp", cfg.host, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	cursor := ""
	if resume && c.lastID != "" {
		cursor = "Last-Event-ID: " + c.lastID + "\r\n"
	}
	request := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", path, cfg.host, cursor)
	if _, err = io.WriteString(conn, request); err != nil {
		conn.Close()
		return nil, nil, err
	}
	response, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if response.StatusCode != http.StatusOK {
		conn.Close()
		return nil, nil, fmt.Errorf("status %d", response.StatusCode)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, response.Body, nil
}

func runStorm(args []string) error {
	cfg, err := parseStormFlags(args)
	if err != nil {
		return err
	}
	time.AfterFunc(cfg.deadline, func() {
		fmt.Fprintln(os.Stderr, "loadgen storm: deadline reached")
		os.Exit(3)
	})
	path := "/events?channel=" + url.QueryEscape(cfg.channel) + "&format=json"
	clients := make([]*stormClient, cfg.clients)
	var warmRead atomic.Int64
	slots := make(chan struct{}, cfg.dialers)
	var opened sync.WaitGroup
	var failed atomic.Int64
	started := time.Now()
	for i := range clients {
		client := &stormClient{ended: make(chan struct{})}
		clients[i] = client
		slots <- struct{}{}
		opened.Add(1)
		go func() {
			conn, body, err := client.open(cfg, path, false)
			<-slots
			opened.Done()
			if err != nil {
				failed.Add(1)
				close(client.ended)
				return
			}
			client.read(body, -1, func() { warmRead.Add(1) })
			conn.Close()
			close(client.ended)
		}()
	}
	opened.Wait()
	connected := cfg.clients - int(failed.Load())
	if connected == 0 {
		return errors.New("no client connected")
	}
	watch := config{subBases: []string{cfg.base}, channel: cfg.channel}
	if err := waitSubscribed(watch, connected, 60*time.Second); err != nil {
		return err
	}
	pub := &http.Client{Timeout: 30 * time.Second}
	for seq := 1; seq <= cfg.warm; seq++ {
		if _, err := publishSeqs(pub, cfg, seq, seq); err != nil {
			return fmt.Errorf("warm-up publish: %w", err)
		}
	}
	want := int64(connected * cfg.warm)
	if !waitFor(func() bool { return warmRead.Load() >= want }, 60*time.Second) {
		return fmt.Errorf("warm-up: %d of %d events read", warmRead.Load(), want)
	}
	emit(map[string]any{
		"event": "armed", "clients": connected, "failed": failed.Load(),
		"connect_s": time.Since(started).Seconds(),
	})
	downBy := time.Now().Add(60 * time.Second)
	for _, client := range clients {
		select {
		case <-client.ended:
		case <-time.After(time.Until(downBy)):
		}
	}
	emit(downRecord(clients, cfg.warm))
	// The driver writes a line once the server is back (restarted, same port).
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the driver's go: %w", err)
	}
	if !waitFor(func() bool { return probeOK(pub, cfg.base+cfg.probe) }, 60*time.Second) {
		return errors.New("the server did not come back within 60 s")
	}
	first, last := cfg.warm+1, cfg.warm+cfg.events
	publishedAt := time.Now()
	accepted := 0
	for seq := first; seq <= last; seq += cfg.batch {
		n, err := publishSeqs(pub, cfg, seq, minInt(seq+cfg.batch-1, last))
		accepted += n
		if err != nil {
			return fmt.Errorf("publish while away: %w", err)
		}
	}
	emit(map[string]any{"event": "published", "accepted": accepted, "publish_s": time.Since(publishedAt).Seconds()})
	emit(storm(cfg, clients, path, last))
	return nil
}

// storm reconnects every client within the window and measures until all have caught up.
func storm(cfg stormConfig, clients []*stormClient, path string, last int) map[string]any {
	t0 := time.Now()
	var reconnected, caughtUp atomic.Int64
	var lastReconnect atomic.Int64
	cpuBefore := cpuSeconds()
	for _, client := range clients {
		client.readAfterRun = 0
		go func(client *stormClient, delay time.Duration) {
			time.Sleep(delay)
			for time.Since(t0) < cfg.limit {
				conn, body, err := client.open(cfg, path, cfg.resume)
				if err != nil {
					client.refused++
					client.failure = failureKind(err)
					time.Sleep(250 * time.Millisecond)
					continue
				}
				now := time.Now().UnixNano()
				atomic.StoreInt64(&client.reconnectNs, now)
				lastReconnect.Store(now)
				reconnected.Add(1)
				client.read(body, last, func() {
					if client.lastSeq == last {
						caughtUp.Add(1)
					}
				})
				conn.Close()
				return
			}
		}(client, time.Duration(rand.Int63n(int64(cfg.window))))
	}
	probes, probeErrors := []time.Duration{}, 0
	prober := &http.Client{Timeout: 5 * time.Second}
	n := int64(len(clients))
	for time.Since(t0) < cfg.limit {
		if caughtUp.Load() >= n {
			break
		}
		if reconnected.Load() >= n && time.Since(time.Unix(0, lastReconnect.Load())) > cfg.settle && !cfg.resume {
			break
		}
		began := time.Now()
		if probeOK(prober, cfg.base+cfg.probe) {
			probes = append(probes, time.Since(began))
		} else {
			probeErrors++
		}
		time.Sleep(time.Until(began.Add(20 * time.Millisecond)))
	}
	wall := time.Since(t0).Seconds()
	record := map[string]any{
		"event":        "storm",
		"clients":      n,
		"reconnected":  reconnected.Load(),
		"caught_up":    caughtUp.Load(),
		"wall_s":       wall,
		"loadgen_cpu":  (cpuSeconds() - cpuBefore) / wall,
		"probes":       len(probes),
		"probe_errors": probeErrors,
		"probe_p50_ms": ms(quantile(probes, 0.5)),
		"probe_p99_ms": ms(quantile(probes, 0.99)),
		"probe_max_ms": ms(quantile(probes, 1)),
		"resume":       cfg.resume,
	}
	var reconnectTimes, catchUpTimes []time.Duration
	refused, refusedClients, outOfOrder := 0, 0, 0
	failures := map[string]int{}
	for _, client := range clients {
		refused += client.refused
		if client.refused > 0 {
			refusedClients++
			failures[client.failure]++
		}
		if ns := atomic.LoadInt64(&client.reconnectNs); ns > 0 {
			reconnectTimes = append(reconnectTimes, time.Duration(ns-t0.UnixNano()))
		}
		if ns := atomic.LoadInt64(&client.caughtUpNs); ns > 0 {
			catchUpTimes = append(catchUpTimes, time.Duration(ns-t0.UnixNano()))
		}
		if client.outOfOrder {
			outOfOrder++
		}
	}
	record["refused_attempts"] = refused
	record["refused_clients"] = refusedClients
	record["failures"] = failures
	record["out_of_order"] = outOfOrder
	record["reconnect_p99_s"] = quantile(reconnectTimes, 0.99).Seconds()
	record["reconnect_max_s"] = quantile(reconnectTimes, 1).Seconds()
	record["caught_up_p50_s"] = quantile(catchUpTimes, 0.5).Seconds()
	record["caught_up_p99_s"] = quantile(catchUpTimes, 0.99).Seconds()
	record["caught_up_max_s"] = quantile(catchUpTimes, 1).Seconds()
	return record
}

// downRecord sums up the retry values each client was told: at its opening, and at the end.
func downRecord(clients []*stormClient, warm int) map[string]any {
	opening, closing := map[int]bool{}, []int{}
	ended, cursors := 0, 0
	for _, client := range clients {
		select {
		case <-client.ended:
			ended++
		default:
		}
		if client.lastSeq == warm && client.lastID != "" {
			cursors++
		}
		if len(client.retries) > 0 {
			opening[client.retries[0]] = true
		}
		if len(client.retries) > 1 {
			closing = append(closing, client.retries[len(client.retries)-1])
		}
	}
	sort.Ints(closing)
	record := map[string]any{
		"event": "down", "ended": ended, "with_cursor": cursors,
		"opening_retry_distinct": len(opening), "told_retry_at_shutdown": len(closing),
	}
	if len(closing) > 0 {
		distinct := map[int]bool{}
		for _, value := range closing {
			distinct[value] = true
		}
		record["shutdown_retry_min_ms"] = closing[0]
		record["shutdown_retry_p50_ms"] = closing[len(closing)/2]
		record["shutdown_retry_max_ms"] = closing[len(closing)-1]
		record["shutdown_retry_distinct"] = len(distinct)
	}
	return record
}

// publishSeqs publishes events first..last (one POST, NDJSON when more than one); how many were accepted.
func publishSeqs(client *http.Client, cfg stormConfig, first, last int) (int, error) {
	var body strings.Builder
	for seq := first; seq <= last; seq++ {
		fmt.Fprintf(&body, "{\"message\":\"stormseq%d pbts%d\"}\n", seq, time.Now().UnixNano())
	}
	contentType := "application/json"
	if last > first {
		contentType = "application/x-ndjson"
	}
	endpoint := cfg.base + "/api/channels/" + cfg.channel + "/events"
	if err := postEvents(client, endpoint, contentType, strings.NewReader(body.String())); err != nil {
		return 0, err
	}
	return last - first + 1, nil
}

// failureKind folds an error to its kind: "read tcp A->B: i/o timeout" is "i/o timeout".
func failureKind(err error) string {
	text := err.Error()
	if at := strings.LastIndex(text, ": "); at >= 0 {
		return text[at+2:]
	}
	return text
}

func probeOK(client *http.Client, target string) bool {
	response, err := client.Get(target)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, response.Body)
	response.Body.Close()
	return response.StatusCode == http.StatusOK
}

func waitFor(check func() bool, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		if check() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func quantile(values []time.Duration, q float64) time.Duration {
	if len(values) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), values...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(q*float64(len(sorted)-1))]
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
