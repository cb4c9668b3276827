package knowledge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dingdesk/dingdesk/bot"
)

// DefaultPollInterval is how often Sync reads the revision: an edit on one
// replica is live on the others within about this long (plus a rebuild).
const DefaultPollInterval = 2 * time.Second

// kickDebounce is how long a Kick waits for more before rebuilding.
const kickDebounce = 150 * time.Millisecond

// Sync keeps a replica's matcher on the latest knowledge: it polls the
// store's revision and, when it moved (or Kick was called: the files
// changed, or this replica wrote), rebuilds from the merged entries and
// hands them to Build.
type Sync struct {
	Manager *Manager
	// Build swaps in a matcher for the active entries (in cmd: index them
	// with the config's options, then bot.(*Bot).Replace). An error keeps
	// the running matcher; the next change tries again.
	Build    func(entries []bot.Entry) error
	Interval time.Duration // DefaultPollInterval when 0
	Log      *slog.Logger

	mu    sync.Mutex // one rebuild at a time
	built int64      // revision of the running matcher; -1 before the first
	kick  chan struct{}
	once  sync.Once
}

func (s *Sync) init() {
	s.once.Do(func() {
		s.kick = make(chan struct{}, 1)
		s.built = -1
	})
}

// Rebuild builds the matcher now from what the files and the store hold,
// and records the revision it was built at.
func (s *Sync) Rebuild(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.Manager.merged(ctx)
	if err != nil {
		return err
	}
	if err := s.Build(Active(snap.Entries)); err != nil {
		return err
	}
	s.built = snap.Revision
	return nil
}

// Revision is the store revision the running matcher was built at (-1
// before the first build).
func (s *Sync) Revision() int64 {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.built
}

// Kick asks Run to rebuild soon, whatever the revision says (the knowledge
// files changed, or this replica just wrote).
func (s *Sync) Kick() {
	s.init()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends.
func (s *Sync) Run(ctx context.Context) {
	s.init()
	iv := s.Interval
	if iv <= 0 {
		iv = DefaultPollInterval
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	failing := false
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
			force = true
			// A burst of edits (an admin working through the unanswered
			// list) costs one rebuild, not one each: each rebuild retrains
			// the classifier (about 0.7 s for 1 000 entries).
			select {
			case <-ctx.Done():
				return
			case <-time.After(kickDebounce):
			}
			select {
			case <-s.kick:
			default:
			}
		}
		if !force {
			rev, err := s.Manager.store.Revision(ctx)
			if err != nil {
				if !failing {
					log.Warn("knowledge revision unreadable; the running knowledge stays", "err", err)
				}
				failing = true
				continue
			}
			if rev == s.Revision() {
				failing = false
				continue
			}
		}
		if err := s.Rebuild(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				log.Error("knowledge rebuild failed; the running knowledge stays", "err", err)
			}
			failing = true
			continue
		}
		failing = false
		log.Info("knowledge rebuilt", "revision", s.Revision())
	}
}
