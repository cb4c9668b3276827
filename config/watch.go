package config

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Store holds the running config snapshot. Readers call Current and keep
// using what they got: a reload swaps the pointer, never edits a snapshot,
// so no reader sees half a config.
type Store struct{ p atomic.Pointer[Config] }

// NewStore starts with c.
func NewStore(c *Config) *Store {
	s := &Store{}
	s.p.Store(c)
	return s
}

// Current is the snapshot in force.
func (s *Store) Current() *Config { return s.p.Load() }

// Replace makes c the snapshot in force.
func (s *Store) Replace(c *Config) { s.p.Store(c) }

// Watch calls onChange (debounced) whenever one of the files named by paths
// is written, created, renamed over or removed. It watches the files'
// directories, not the files, so editors that save by renaming a temporary
// file over the original are seen too. paths is asked again after every
// change, since a reload may name other files. Watch returns when ctx ends.
func Watch(ctx context.Context, paths func() []string, debounce time.Duration, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()

	var mu sync.Mutex
	watched := map[string]bool{} // directories
	wanted := map[string]bool{}  // absolute file paths
	refresh := func() {
		mu.Lock()
		defer mu.Unlock()
		clear(wanted)
		for _, p := range paths() {
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			wanted[abs] = true
			dir := filepath.Dir(abs)
			if !watched[dir] && w.Add(dir) == nil {
				watched[dir] = true
			}
		}
	}
	isWanted := func(name string) bool {
		abs, err := filepath.Abs(name)
		if err != nil {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		return wanted[abs]
	}
	refresh()

	var timer *time.Timer
	fire := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod || !isWanted(ev.Name) {
				continue
			}
			if timer != nil {
				timer.Stop()
			}
			timer = time.AfterFunc(debounce, func() {
				select {
				case fire <- struct{}{}:
				default:
				}
			})
		case <-fire:
			onChange()
			refresh()
		case <-w.Errors:
			// Overflow or a vanished directory: reload to be safe.
			onChange()
			refresh()
		}
	}
}
