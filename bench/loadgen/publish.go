package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const maxErrorKinds = 10

// publisher sends stamped events on a schedule: HTTP POSTs (one event or an
// NDJSON batch each) over keep-alive connections, or lines appended to a file.
type publisher struct {
	view     *viewers
	mode     string
	endpoint string
	base     string
	batch    int
	workers  int
	client   *http.Client
	file     *os.File
}

type pubResult struct {
	Offered  int64          `json:"offered"`
	Sent     int64          `json:"sent"`
	Accepted int64          `json:"accepted"`
	Errors   map[string]int `json:"errors,omitempty"`
	Elapsed  float64        `json:"elapsed_s"`
}

func newPublisher(cfg config) (*publisher, error) {
	p := &publisher{view: &cfg.view, mode: cfg.mode, batch: 1, workers: cfg.pubConns}
	switch cfg.mode {
	case "file":
		file, err := os.OpenFile(cfg.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		p.file, p.workers = file, 1
	case "post", "ndjson":
		if cfg.view.tails() && cfg.file == "" {
			return nil, errors.New("-board with a log channel needs -file (its tailed file)")
		}
		if cfg.view.tails() {
			file, err := os.OpenFile(cfg.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return nil, err
			}
			p.file = file
		}
		p.endpoint = cfg.base + "/api/channels/" + cfg.channel + "/events"
		p.base = cfg.base
		p.client = &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: cfg.pubConns,
				MaxConnsPerHost:     cfg.pubConns,
				DisableCompression:  true,
			},
		}
		if cfg.mode == "ndjson" {
			p.batch = cfg.batch
		}
	}
	return p, nil
}

// run publishes rate events/s for the given duration. A worker that falls
// behind sends at once to catch up; sends due after the duration are dropped.
func (p *publisher) run(rate float64, duration time.Duration) pubResult {
	sendsPerSecond := rate / float64(p.batch)
	total := int64(sendsPerSecond * duration.Seconds())
	started := time.Now()
	end := started.Add(duration)
	var sent, accepted atomic.Int64
	errs := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < p.workers; w++ {
		wg.Add(1)
		go func(first int64) {
			defer wg.Done()
			for i := first; i < total; i += int64(p.workers) {
				due := started.Add(time.Duration(float64(i) / sendsPerSecond * float64(time.Second)))
				if time.Now().After(end) {
					return
				}
				time.Sleep(time.Until(due))
				n, err := p.send()
				sent.Add(int64(p.batch))
				accepted.Add(int64(n))
				if err != nil {
					mu.Lock()
					countError(errs, err)
					mu.Unlock()
				}
			}
		}(int64(w))
	}
	wg.Wait()
	return pubResult{
		Offered:  total * int64(p.batch),
		Sent:     sent.Load(),
		Accepted: accepted.Load(),
		Errors:   errs,
		Elapsed:  time.Since(started).Seconds(),
	}
}

// send publishes one unit (an event, a batch or a line) and returns how many events were accepted.
func (p *publisher) send() (int, error) {
	body := make([]byte, 0, 48*p.batch)
	now := time.Now().UnixNano()
	if p.mode == "file" {
		body = strconv.AppendInt(append(body, "INFO pbts"...), now, 10)
		body = append(append(body, " bench line"...), p.view.tag()...)
		body = append(body, '\n')
		_, err := p.file.Write(body)
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	endpoint := p.endpoint
	if len(p.view.board) > 0 {
		channel, event, file := p.view.boardEvent(now)
		if file {
			if _, err := p.file.Write(event); err != nil {
				return 0, err
			}
			return 1, nil
		}
		body, endpoint = event, p.base+"/api/channels/"+channel+"/events"
	}
	for i := 0; i < p.batch && len(p.view.board) == 0; i++ {
		body = strconv.AppendInt(append(body, `{"message":"pbts`...), now, 10)
		body = append(body, "\"}\n"...)
	}
	contentType := "application/json"
	if p.mode == "ndjson" {
		contentType = "application/x-ndjson"
	}
	if err := postEvents(p.client, endpoint, contentType, bytes.NewReader(body)); err != nil {
		return 0, err
	}
	return p.batch, nil
}

// postEvents POSTs one body of events and reads the answer to its end (the connection is
// kept alive); any status but 201 Created is an error.
func postEvents(client *http.Client, endpoint, contentType string, body io.Reader) error {
	response, err := client.Post(endpoint, contentType, body)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, response.Body)
	response.Body.Close()
	if response.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d", response.StatusCode)
	}
	return nil
}

// countError tallies an error by its text, folding rare kinds once there are many.
func countError(errs map[string]int, err error) {
	key := err.Error()
	if _, seen := errs[key]; !seen && len(errs) >= maxErrorKinds {
		key = "other"
	}
	errs[key]++
}
