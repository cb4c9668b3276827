package gormstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// models lists every table. Migrations are gorm's AutoMigrate: additive
// (new tables, columns, indexes), never destructive.
func models() []any {
	return append([]any{
		&inboxRow{},
		&outboxRow{},
		&replicaRow{},
		&kbHitRow{},
		&handoffConversationRow{},
		&handoffSessionRow{},
		&handoffAgentRow{},
		&handoffGroupRow{},
		&handoffMessageRow{},
		&handoffUnansweredRow{},
		// managed knowledge (knowledge.go) and reports (report.go)
		&kbEntryRow{},
		&kbMetaRow{},
		&kbChangeRow{},
		&kbReviewRow{},
		&kbImportRow{},
		&botTurnRow{},
		&sessionRatingRow{},
	}, webModels()...)
}

// Migrate brings the schema up to date. It is safe to run from several
// replicas at once: on MySQL a named lock (GET_LOCK) lets one replica
// migrate while the others wait; on SQLite the migration runs in an
// immediate transaction, which holds the file's write lock.
func (db *DB) Migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	switch db.Driver {
	case "mysql":
		return db.gorm.WithContext(ctx).Connection(func(conn *gorm.DB) error {
			var got int
			if err := conn.Raw("SELECT GET_LOCK('dingdesk_migrate', 60)").Scan(&got).Error; err != nil {
				return fmt.Errorf("migrate: take lock: %w", err)
			}
			if got != 1 {
				return fmt.Errorf("migrate: another replica held the migration lock for 60s")
			}
			defer conn.Exec("SELECT RELEASE_LOCK('dingdesk_migrate')")
			if err := conn.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin").AutoMigrate(models()...); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			return nil
		})
	default:
		return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.AutoMigrate(models()...); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			return nil
		})
	}
}
