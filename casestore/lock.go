package casestore

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// lockCheckInterval is how often a lease checks that its connection, and
// with it the lock, is still alive.
const lockCheckInterval = 5 * time.Second

var _ casedesk.Locker = (*DB)(nil)

// TryLock takes a PostgreSQL session advisory lock on a connection of its
// own (outside the pool, so long-held locks never starve transactions).
// The lock lives as long as that session: if the connection dies, the
// server releases the lock and the lease reports it as lost.
func (db *DB) TryLock(ctx context.Context, name string) (casedesk.Lease, error) {
	if name == "" {
		return nil, casedesk.Errorf(casedesk.EINVALID, "a lock needs a name")
	}
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, unavailable(fmt.Errorf("lock %q: %w", name, err))
	}
	key := lockKey(name)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Close(context.Background())
		if err != nil {
			return nil, unavailable(fmt.Errorf("lock %q: %w", name, err))
		}
		return nil, nil
	}
	l := &lease{conn: conn, key: key, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch(db.lockCheck)
	return l, nil
}

// lockKey maps a lock name onto PostgreSQL's 64-bit advisory lock space.
// The "casedesk:" prefix keeps our keys apart from other applications'.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("casedesk:" + name))
	return int64(h.Sum64())
}

type lease struct {
	conn *pgx.Conn
	key  int64

	lost      chan struct{}
	lostOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *lease) Lost() <-chan struct{} { return l.lost }

func (l *lease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// watch pings the lock's connection until Release.
func (l *lease) watch(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				l.markLost()
				return
			}
		}
	}
}

// Release unlocks and closes the connection. Closing alone would release
// the lock too; the explicit unlock makes it immediate even when the close
// is slow to reach the server.
func (l *lease) Release() {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
		l.conn.Close(ctx)
		l.markLost()
	})
}
