package gormstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// replicaRow is one running process's heartbeat. A process owns the inbox
// rows it accepted and the sends it claimed; once its heartbeat is older
// than storage.replica_timeout, any other replica (or the next start of
// the same one, which has a new id) takes that work over. A heartbeat is
// one tiny write per second per replica, instead of a lease on every row
// that would have to outlast the slowest send.
type replicaRow struct {
	ID        string    `gorm:"primaryKey;size:64"`
	Host      string    `gorm:"size:255;not null;default:''"`
	StartedAt time.Time `gorm:"not null"`
	BeatAt    time.Time `gorm:"not null;index:ix_replicas_beat"`
}

func (replicaRow) TableName() string { return "replicas" }

// newReplicaID is unique per process start: a restarted process is a new
// replica, so its previous life's work is taken over like any dead
// replica's.
func newReplicaID() string {
	b := make([]byte, 8)
	rand.Read(b)
	host, _ := os.Hostname()
	if len(host) > 40 {
		host = host[:40]
	}
	return host + "-" + hex.EncodeToString(b)
}

// ReplicaID is this process's id in the replicas table.
func (db *DB) ReplicaID() string { return db.replica }

// ReplicaTimeout is how long a replica may miss heartbeats before its work
// is taken over.
func (db *DB) ReplicaTimeout() time.Duration { return db.replicaTimeout }

// HeartbeatInterval is how often a replica writes its heartbeat: five
// beats per timeout, so a slow write or two never looks like a death.
func (db *DB) HeartbeatInterval() time.Duration { return db.replicaTimeout / 5 }

// Heartbeat records that this replica is alive at now.
func (db *DB) Heartbeat(ctx context.Context, now time.Time) error {
	host, _ := os.Hostname()
	row := replicaRow{ID: db.replica, Host: truncate(host, 255), StartedAt: now.UTC(), BeatAt: now.UTC()}
	err := db.gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"beat_at"}),
	}).Create(&row).Error
	if err == nil {
		db.lastBeat.Store(now.UnixNano())
	}
	return err
}

// BeatFresh reports whether this replica's last heartbeat is recent enough
// that no other replica can have taken its work over (half the timeout:
// clocks of replicas differ a little).
func (db *DB) BeatFresh(now time.Time) bool {
	return now.UnixNano()-db.lastBeat.Load() < int64(db.replicaTimeout/2)
}

// Retire removes this replica's heartbeat at a clean shutdown: whatever it
// leaves unfinished is taken over at once instead of after the timeout.
// It also forgets replicas dead for longer than an hour.
func (db *DB) Retire(ctx context.Context, now time.Time) error {
	return db.gorm.WithContext(ctx).Where("id = ? OR beat_at < ?", db.replica, now.Add(-time.Hour).UTC()).
		Delete(&replicaRow{}).Error
}

// deadOwner restricts q to rows whose replica_id names neither this
// replica nor any replica with a fresh heartbeat: the work of a dead
// process. The subquery reads a table of a few rows.
func (db *DB) deadOwner(q *gorm.DB, now time.Time) *gorm.DB {
	alive := db.gorm.Model(&replicaRow{}).Select("id").Where("beat_at >= ?", now.Add(-db.replicaTimeout).UTC())
	return q.Where("replica_id <> ? AND replica_id NOT IN (?)", db.replica, alive)
}
