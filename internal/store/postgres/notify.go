package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Several hookd processes on one schema tell each other of changes with
// PostgreSQL's LISTEN/NOTIFY, on a channel of the schema: processes on
// other schemas of the same database never hear them. A notification is a
// hint, not a record: one sent while a listener is disconnected is lost,
// so a listener reconciles from the tables whenever it (re)connects.

// Backoff of Listen between two connection attempts.
const (
	listenRetryMin = 50 * time.Millisecond
	listenRetryMax = 2 * time.Second
)

// listenCheck is how long Listen waits for a notification before it checks
// that its connection still answers: a connection that died without a
// word (a network partition) would otherwise wait forever.
const listenCheck = 30 * time.Second

// channel is the notification channel of the store's schema.
func (s *Store) channel() string { return fmt.Sprintf("hookd_%08x", uint32(s.lockKey)) }

// Notify sends payload to every process listening on the store's schema
// (itself included), once the statement commits. PostgreSQL bounds a
// payload at 8000 bytes.
func (s *Store) Notify(ctx context.Context, payload string) error {
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel(), payload)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: notify: %w", mapErr(err))
	}
	return nil
}

// Listen receives the notifications of the store's schema until ctx ends:
// it calls fn with each one's payload, in order, on its own goroutine (fn
// must not block for long: notifications wait meanwhile). It holds one
// connection of its own, outside the pool. connected is called after
// every connection, the first one and each reconnection: notifications
// sent while Listen was not connected are lost, so the caller reads again
// what they would have told it then. When the connection breaks (the
// server restarted, the network failed) Listen connects again, waiting a
// little longer after each failure, up to 2 s. It returns ctx's error when
// ctx ends, or an error when the store is closed.
func (s *Store) Listen(ctx context.Context, fn func(payload string), connected func()) error {
	wait := listenRetryMin
	down := false // logged once per outage
	for {
		err := s.listenOnce(ctx, fn, func() {
			if down {
				s.log.Info("listening for changes of other processes again")
			}
			wait, down = listenRetryMin, false
			if connected != nil {
				connected()
			}
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.closed.Load() {
			return errClosed
		}
		if !down {
			s.log.Warn("lost the connection that listens for changes of other processes; reconnecting (their changes reach this process at the next reconciliation meanwhile)", "err", err)
			down = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// listenOnce connects, listens, calls connected, then hands notifications
// to fn until the connection breaks or ctx ends.
func (s *Store) listenOnce(ctx context.Context, fn func(string), connected func()) error {
	c, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return mapErr(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.Close(cctx)
		cancel()
	}()
	if _, err := c.Exec(ctx, `LISTEN `+quoteIdent(s.channel())); err != nil {
		return mapErr(err)
	}
	connected()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := c.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !c.IsClosed():
			// Quiet for a while: make sure the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return mapErr(err)
			}
		default:
			return mapErr(err)
		}
	}
}
