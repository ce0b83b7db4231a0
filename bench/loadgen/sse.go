package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var (
	dataPrefix  = []byte("data:")
	stampPrefix = []byte("pbts")
)

// stamp reads the publisher's send time (unix ns) from a data line: "pbts<digits>".
func stamp(line []byte) (int64, bool) {
	at := bytes.Index(line, stampPrefix)
	if at < 0 {
		return 0, false
	}
	var ns int64
	digits := 0
	for _, c := range line[at+len(stampPrefix):] {
		if c < '0' || c > '9' {
			break
		}
		ns = ns*10 + int64(c-'0')
		digits++
	}
	return ns, digits > 0
}

// stepStats accumulates what subscribers receive while one step runs.
type stepStats struct {
	startNs   int64
	received  atomic.Int64
	unstamped atomic.Int64
	lastNs    atomic.Int64
	maxNs     atomic.Int64
	latency   histogram
}

func (s *stepStats) record(nowNs, sentNs int64) {
	s.received.Add(1)
	s.lastNs.Store(nowNs)
	took := nowNs - sentNs
	for {
		seen := s.maxNs.Load()
		if took <= seen || s.maxNs.CompareAndSwap(seen, took) {
			break
		}
	}
	s.latency.record(took / 1000)
}

// pool holds the subscribers: one goroutine and one connection each.
type pool struct {
	hosts       []string
	path        func(i int) string
	unstamped   []byte
	dialers     int
	conns       []net.Conn
	connectTook []time.Duration
	failures    map[string]int
	current     atomic.Pointer[stepStats]
	stale       atomic.Int64
	disconnects atomic.Int64
	closing     atomic.Bool
	mu          sync.Mutex
}

type dialed struct {
	conn net.Conn
	body io.ReadCloser
	took time.Duration
	err  error
}

// connect opens n subscriptions, at most p.dialers at a time, and starts reading each.
func (p *pool) connect(n int) {
	p.failures = map[string]int{}
	slots := make(chan struct{}, p.dialers)
	results := make(chan dialed, n)
	for i := 0; i < n; i++ {
		slots <- struct{}{}
		host, path := p.hosts[i%len(p.hosts)], p.path(i)
		go func() {
			d := p.dial(host, path)
			<-slots
			results <- d
			if d.err == nil {
				p.read(d.body)
			}
		}()
	}
	for i := 0; i < n; i++ {
		d := <-results
		p.mu.Lock()
		if d.err != nil {
			p.failures[d.err.Error()]++
		} else {
			p.conns = append(p.conns, d.conn)
			p.connectTook = append(p.connectTook, d.took)
		}
		p.mu.Unlock()
	}
}

func (p *pool) dial(host, path string) dialed {
	started := time.Now()
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return dialed{err: err}
	}
	// Reset on close: the load generator, not the server, would otherwise hold
	// thousands of ports in TIME_WAIT across runs.
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.SetDeadline(started.Add(30 * time.Second))
	request := fmt.Sprintf(
		"GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
		path, host,
	)
	if _, err = io.WriteString(conn, request); err != nil {
		conn.Close()
		return dialed{err: err}
	}
	response, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		conn.Close()
		return dialed{err: err}
	}
	if response.StatusCode != http.StatusOK {
		conn.Close()
		return dialed{err: fmt.Errorf("status %d", response.StatusCode)}
	}
	_ = conn.SetDeadline(time.Time{})
	return dialed{conn: conn, body: response.Body, took: time.Since(started)}
}

// read parses the stream line by line and times every data line that carries a stamp.
func (p *pool) read(body io.ReadCloser) {
	lines := bufio.NewReaderSize(body, 4096)
	for {
		line, err := lines.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if !p.closing.Load() {
				p.disconnects.Add(1)
			}
			return
		}
		if bytes.HasPrefix(line, dataPrefix) {
			p.observe(line)
		} else if p.unstamped != nil {
			p.observeUnstamped(line)
		}
	}
}

// observe records every stamp of a data line: an html message may carry a run of rows
// (app/frames.py joins one channel's rows written at once), each one delivery.
func (p *pool) observe(line []byte) {
	now := time.Now().UnixNano()
	stats := p.current.Load()
	for {
		at := bytes.Index(line, stampPrefix)
		if at < 0 {
			return
		}
		sent, ok := stamp(line[at:])
		line = line[at+len(stampPrefix):]
		if !ok {
			continue
		}
		if stats == nil || sent < stats.startNs {
			p.stale.Add(1)
			continue
		}
		stats.record(now, sent)
	}
}

// connectQuantile is the q-quantile of the time from dial to response headers.
func (p *pool) connectQuantile(q float64) time.Duration {
	if len(p.connectTook) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), p.connectTook...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[int(q*float64(len(sorted)-1))]
}

func (p *pool) close() {
	p.closing.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, conn := range p.conns {
		conn.Close()
	}
}
