package main

import (
	"fmt"
	"io"
	"net"
	"time"
)

// openStalled opens n subscriptions that send their request and never read a
// byte: a frozen browser tab or a wedged consumer beside the healthy
// subscribers. Connections that fail are left out.
func openStalled(host, path string, n int) []net.Conn {
	conns := make([]net.Conn, 0, n)
	request := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, host)
	for i := 0; i < n; i++ {
		conn, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			continue
		}
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err = io.WriteString(conn, request); err != nil {
			conn.Close()
			continue
		}
		conns = append(conns, conn)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, conn := range conns {
		conn.Close()
	}
}
