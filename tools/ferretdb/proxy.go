package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

// Wire protocol constants (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/).
const (
	headerLen      = 16
	opMsg          = 2013
	flagMoreToCome = 1 << 1
	maxMessageLen  = 64 << 20 // above MongoDB's 48 MB maxMessageSizeBytes
)

// proxy forwards MongoDB wire messages to upstream, one command at a time server-wide.
type proxy struct {
	upstream string
	mu       sync.Mutex // held from sending a request upstream until its reply is read
}

// serve accepts client connections on l until ctx is done.
func (p *proxy) serve(ctx context.Context, l net.Listener) {
	var wg sync.WaitGroup
	conns := make(map[net.Conn]struct{})
	var connsMu sync.Mutex

	go func() {
		<-ctx.Done()
		l.Close()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
	}()

	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(os.Stderr, "ferretdb: accept: %s\n", err)
			}
			break
		}
		connsMu.Lock()
		conns[c] = struct{}{}
		connsMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.handle(c)
			connsMu.Lock()
			delete(conns, c)
			connsMu.Unlock()
		}()
	}
	wg.Wait()
}

// handle relays one client connection over its own upstream connection.
func (p *proxy) handle(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: dial upstream: %s\n", err)
		return
	}
	defer up.Close()

	cr := bufio.NewReader(client)
	ur := bufio.NewReader(up)
	for {
		req, err := readMessage(cr)
		if err != nil {
			return
		}
		replies, err := p.roundTrip(up, ur, req)
		if err != nil {
			return
		}
		// Write to the client outside the lock: a slow or stopped client must not stall others.
		for _, r := range replies {
			if _, err := client.Write(r); err != nil {
				return
			}
		}
	}
}

// roundTrip sends req upstream and reads its replies while holding the global lock.
func (p *proxy) roundTrip(up net.Conn, ur *bufio.Reader, req []byte) ([][]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if _, err := up.Write(req); err != nil {
		return nil, err
	}
	if moreToCome(req) {
		// Fire-and-forget (w: 0): the client expects no reply, but FerretDB 1.x ignores
		// the flag and replies anyway, which would answer the client's next request
		// with this reply. Read it and drop it.
		_, err := readMessage(ur)
		return nil, err
	}
	var replies [][]byte
	for {
		r, err := readMessage(ur)
		if err != nil {
			return nil, err
		}
		replies = append(replies, r)
		if !moreToCome(r) {
			return replies, nil
		}
	}
}

// readMessage reads one whole wire message (header included).
func readMessage(r *bufio.Reader) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(h[0:4])))
	if n < headerLen || n > maxMessageLen {
		return nil, fmt.Errorf("bad message length %d", n)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[headerLen:]); err != nil {
		return nil, err
	}
	return b, nil
}

// moreToCome reports whether an OP_MSG has the moreToCome flag bit set.
func moreToCome(msg []byte) bool {
	if len(msg) < headerLen+4 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return false
	}
	return binary.LittleEndian.Uint32(msg[16:20])&flagMoreToCome != 0
}
