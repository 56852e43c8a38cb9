// Command ferretdb runs an embedded FerretDB 1.x (MongoDB wire protocol over SQLite)
// for latchkey's throwaway test servers. It is a test tool, not a production server.
//
// It wraps the embeddable package github.com/FerretDB/FerretDB/ferretdb instead of
// building FerretDB's own cmd/ferretdb: the upstream command panics at start unless it is
// built from a release tree ("Invalid build/version/version.txt file content"), while the
// version check is skipped when the main module is not FerretDB itself. The embeddable
// package always runs with telemetry disabled and reports nothing anywhere.
//
// # Serialised commands (--serialize, on by default)
//
// FerretDB 1.x runs findAndModify, update and delete as "query, then write" without a
// transaction, so two concurrent conditional updates of one document can both match and
// both "win" (measured: 19 of 20 rounds of 10 concurrent findOneAndUpdate({lock: null})
// had several winners; 50 concurrent $inc lost 48 increments). MongoDB makes every
// single-document write atomic, and latchkey's mongo backend relies on that. So by default
// FerretDB listens on an internal loopback port and this command puts a small wire-protocol
// proxy on --listen-addr that forwards one command at a time, server-wide (each client
// connection keeps its own upstream connection, so cursors and sessions are unchanged).
// The proxy also drops the reply FerretDB sends to fire-and-forget (w: 0, moreToCome)
// messages, which would otherwise answer the client's next request.
// Pass --serialize=false to talk to FerretDB directly.
//
// Usage:
//
//	ferretdb --listen-addr 127.0.0.1:27017 --state-dir /tmp/ferret
//	ferretdb --listen-addr 127.0.0.1:27017 --sqlite-url file:/tmp/ferret/ --serialize=false
//
// It exits with status 0 on SIGTERM or SIGINT after closing its listeners and the backend.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "", "SQLite URI of the data directory, e.g. file:/tmp/data/ (overrides --state-dir)")
	stateDir := flag.String("state-dir", "", "data directory for the SQLite backend (created if missing)")
	logLevel := flag.String("log-level", "error", "FerretDB log level: debug, info, warn or error")
	serialize := flag.Bool("serialize", true, "run one command at a time, server-wide, so single-document writes are atomic")
	flag.Parse()

	if err := run(*listenAddr, *sqliteURL, *stateDir, *logLevel, *serialize); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %s\n", err)
		os.Exit(1)
	}
}

func run(listenAddr, sqliteURL, stateDir, logLevel string, serialize bool) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("bad --log-level %q: %w", logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if sqliteURL == "" {
		if stateDir == "" {
			return fmt.Errorf("one of --sqlite-url or --state-dir is required")
		}
		abs, err := filepath.Abs(stateDir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return err
		}
		sqliteURL = "file:" + abs + "/"
	} else if !strings.HasSuffix(strings.SplitN(sqliteURL, "?", 2)[0], "/") {
		return fmt.Errorf("--sqlite-url must name a directory and end with '/': %q", sqliteURL)
	}

	// Bind the public address first so "address in use" fails fast and clearly.
	var front net.Listener
	ferretAddr := listenAddr
	if serialize {
		var err error
		if front, err = net.Listen("tcp", listenAddr); err != nil {
			return err
		}
		defer front.Close()
		ferretAddr = "127.0.0.1:0"
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: ferretAddr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	if serialize {
		// New has already bound FerretDB's listener, so its address is known.
		upstream := strings.TrimSuffix(strings.TrimPrefix(f.MongoDBURI(), "mongodb://"), "/")
		p := &proxy{upstream: upstream}
		go p.serve(ctx, front)
		fmt.Fprintf(os.Stderr, "ferretdb: listening on %s (serialised proxy to %s; sqlite %s)\n",
			front.Addr(), upstream, sqliteURL)
	} else {
		fmt.Fprintf(os.Stderr, "ferretdb: listening on %s (sqlite %s)\n", listenAddr, sqliteURL)
	}

	err = <-done
	if err == nil {
		fmt.Fprintln(os.Stderr, "ferretdb: stopped")
	}
	return err
}
