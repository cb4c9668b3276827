package knowledge_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dingdesk/dingdesk/bot"
	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/gormstore/gormstoretest"
	"github.com/dingdesk/dingdesk/knowledge"
)

var fileEntries = []bot.Entry{
	{ID: "vpn", Question: "VPN 连不上怎么办", Similar: []string{"VPN 无法连接"}, Answer: "重启 VPN 客户端。", Category: "IT", Source: "kb.yaml:1"},
	{ID: "leave", Question: "怎么请假", Similar: []string{"请假流程"}, Answer: "在钉钉审批里提交请假。", Category: "HR", Source: "kb.yaml:6"},
	{ID: "wifi", Question: "公司 WiFi 密码是多少", Answer: "访客网络密码贴在前台。", Category: "IT", Source: "kb.yaml:11"},
}

func files() ([]bot.Entry, error) { return slices.Clone(fileEntries), nil }

func newManager(t *testing.T, db *gormstore.DB) *knowledge.Manager {
	t.Helper()
	return knowledge.NewManager(gormstore.NewKnowledgeStore(db), files, nil)
}

func ids(es []knowledge.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestManagerOverlay(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		db := gormstoretest.Open(t, driver)
		m := newManager(t, db)

		all, err := m.List(ctx, knowledge.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(all); !slices.Equal(got, []string{"vpn", "leave", "wifi"}) || all[0].Origin != knowledge.OriginFile {
			t.Fatalf("file entries = %v", got)
		}

		// Create, with a made-up id; a question another entry has is refused.
		e, err := m.Create(ctx, "admin1", knowledge.Draft{Question: "打印机卡纸", Similar: []string{"打印机卡纸", "打印机 卡纸了"}, Answer: "打开后盖取出纸张。", Category: "IT"})
		if err != nil {
			t.Fatal(err)
		}
		if e.Origin != knowledge.OriginManaged || e.CreatedBy != "admin1" || e.Version != 1 || !slices.Equal(e.Similar, []string{"打印机 卡纸了"}) {
			t.Fatalf("created = %+v", e)
		}
		var ve *knowledge.ValidationError
		if _, err := m.Create(ctx, "admin1", knowledge.Draft{Question: "vpn无法连接", Answer: "x"}); !errors.As(err, &ve) || ve.Problems[0].Field != "question" {
			t.Fatalf("duplicate question: err = %v", err)
		}
		if _, err := m.Create(ctx, "admin1", knowledge.Draft{ID: "leave", Question: "新问题", Answer: "x"}); !errors.As(err, &ve) {
			t.Fatalf("file id reused: err = %v", err)
		}
		if _, err := m.Create(ctx, "admin1", knowledge.Draft{Question: " ", Answer: ""}); !errors.As(err, &ve) || len(ve.Problems) != 2 {
			t.Fatalf("empty draft: err = %v", err)
		}

		// Edit a file entry: it becomes an edited record; a stale version conflicts.
		up, err := m.Update(ctx, "admin2", "leave", 0, knowledge.Draft{Question: "怎么请假", Similar: []string{"请假流程", "如何请假"}, Answer: "打开钉钉-审批-请假。", Category: "HR"})
		if err != nil {
			t.Fatal(err)
		}
		if up.Origin != knowledge.OriginEdited || up.UpdatedBy != "admin2" || up.Answer != "打开钉钉-审批-请假。" || up.Source != "kb.yaml:6" {
			t.Fatalf("edited = %+v", up)
		}
		if _, err := m.Update(ctx, "admin3", "leave", up.Version-1, knowledge.Draft{Question: "怎么请假", Answer: "旧"}); !errors.Is(err, knowledge.ErrConflict) {
			t.Fatalf("stale version: err = %v", err)
		}
		if _, err := m.Update(ctx, "admin3", "nope", 0, knowledge.Draft{Question: "q", Answer: "a"}); !errors.Is(err, knowledge.ErrNotFound) {
			t.Fatalf("unknown id: err = %v", err)
		}

		// Disable: listed only on request, left out of the matcher.
		if _, err := m.SetDisabled(ctx, "admin1", "wifi", true); err != nil {
			t.Fatal(err)
		}
		snap, _ := m.Snapshot(ctx)
		active := knowledge.Active(snap.Entries)
		if slices.ContainsFunc(active, func(e bot.Entry) bool { return e.ID == "wifi" }) || len(active) != 3 {
			t.Fatalf("active = %v", active)
		}
		if dis, _ := m.List(ctx, knowledge.Filter{OnlyDisabled: true}); !slices.Equal(ids(dis), []string{"wifi"}) {
			t.Fatalf("disabled = %v", ids(dis))
		}

		// Delete a file entry (tombstone), then revert it.
		if err := m.Delete(ctx, "admin1", "vpn"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Get(ctx, "vpn"); !errors.Is(err, knowledge.ErrNotFound) {
			t.Fatalf("deleted entry still there: %v", err)
		}
		if r, err := m.Revert(ctx, "admin1", "vpn"); err != nil || r.Origin != knowledge.OriginFile || r.Answer != "重启 VPN 客户端。" {
			t.Fatalf("revert = %+v, %v", r, err)
		}
		if err := m.Delete(ctx, "admin1", "no-such-id"); !errors.Is(err, knowledge.ErrNotFound) {
			t.Fatalf("delete unknown: %v", err)
		}
		if err := m.Delete(ctx, "admin1", "vpn"); err != nil {
			t.Fatal(err)
		}
		if err := m.Delete(ctx, "admin1", "vpn"); !errors.Is(err, knowledge.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := m.Revert(ctx, "admin1", "vpn"); err != nil {
			t.Fatal(err)
		}
		// Delete a created entry.
		if err := m.Delete(ctx, "admin1", e.ID); err != nil {
			t.Fatal(err)
		}
		all, _ = m.List(ctx, knowledge.Filter{Disabled: true})
		if got := ids(all); !slices.Equal(got, []string{"vpn", "leave", "wifi"}) {
			t.Fatalf("after deletes = %v", got)
		}

		// Search and categories.
		if found, _ := m.List(ctx, knowledge.Filter{Text: "审批"}); !slices.Equal(ids(found), []string{"leave"}) {
			t.Fatalf("search = %v", ids(found))
		}
		if found, _ := m.List(ctx, knowledge.Filter{Category: "IT", Disabled: true}); !slices.Equal(ids(found), []string{"vpn", "wifi"}) {
			t.Fatalf("category = %v", ids(found))
		}

		// History, newest first, with who.
		h, err := m.History(ctx, "vpn", 10)
		if err != nil || len(h) != 4 || h[0].Action != knowledge.ActionRevert || h[1].Action != knowledge.ActionDelete || h[1].Actor != "admin1" {
			t.Fatalf("history = %+v, %v", h, err)
		}

		// Hit counts from kb_hits.
		if err := gormstore.NewHitStore(db).Flush(ctx, map[string]int64{"leave": 7}); err != nil {
			t.Fatal(err)
		}
		if top, _ := m.List(ctx, knowledge.Filter{Sort: "hits"}); top[0].ID != "leave" || top[0].Hits != 7 {
			t.Fatalf("hits = %+v", top[0])
		}
	})
}

// TestFileChangedUnderEdit: an edited record notices that the file entry
// it was made over changed.
func TestFileChangedUnderEdit(t *testing.T) {
	ctx := context.Background()
	db := gormstoretest.Open(t, "sqlite")
	current := slices.Clone(fileEntries)
	var mu sync.Mutex
	m := knowledge.NewManager(gormstore.NewKnowledgeStore(db), func() ([]bot.Entry, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(current), nil
	}, nil)
	if _, err := m.AddSimilar(ctx, "admin", "wifi", "无线网密码"); err != nil {
		t.Fatal(err)
	}
	if e, _ := m.Get(ctx, "wifi"); e.FileChanged || !slices.Equal(e.Similar, []string{"无线网密码"}) {
		t.Fatalf("right after the edit = %+v", e)
	}
	// Adding a question an entry has writes nothing; a file entry stays a file entry.
	if e, err := m.AddSimilar(ctx, "admin", "leave", "请假流程！"); err != nil || e.Origin != knowledge.OriginFile {
		t.Fatalf("no-op add = %+v, %v", e, err)
	}
	mu.Lock()
	current[2].Answer = "新密码见公告。"
	mu.Unlock()
	if e, _ := m.Get(ctx, "wifi"); !e.FileChanged || e.Answer != "访客网络密码贴在前台。" {
		t.Fatalf("after the file changed = %+v", e)
	}
	// The file takes the record's content (an export folded back): in sync.
	mu.Lock()
	current[2].Answer, current[2].Similar = "访客网络密码贴在前台。", []string{"无线网密码"}
	mu.Unlock()
	if e, _ := m.Get(ctx, "wifi"); e.FileChanged {
		t.Fatalf("after folding back = %+v", e)
	}
}

// TestSyncAcrossReplicas: an edit on one replica reaches the other's
// matcher through the revision poll, and the bot answers with it.
func TestSyncAcrossReplicas(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := gormstoretest.NewStorage(t, driver)
		dbA, dbB := gormstoretest.OpenStorage(t, cfg), gormstoretest.OpenStorage(t, cfg)
		mA, mB := newManager(t, dbA), newManager(t, dbB)

		botB := bot.New(nil)
		syncB := &knowledge.Sync{Manager: mB, Interval: 20 * time.Millisecond, Build: func(es []bot.Entry) error {
			kb, err := bot.NewKnowledgeBase(es, bot.Options{})
			if err == nil {
				botB.Replace(kb)
			}
			return err
		}}
		if err := syncB.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		go syncB.Run(ctx)
		q := "打印机卡纸了怎么处理"
		if r := botB.KB().Match(q); r.Outcome == bot.OutcomeAnswer {
			t.Fatalf("answered before the entry exists: %+v", r.Best)
		}
		if _, err := mA.Create(ctx, "admin", knowledge.Draft{ID: "printer", Question: "打印机卡纸了怎么处理", Answer: "打开后盖取出纸张。"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := botB.KB().Match(q)
			if r.Outcome == bot.OutcomeAnswer && r.Best.ID == "printer" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica B never answered with the new entry (revision %d)", syncB.Revision())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if rev, _ := gormstore.NewKnowledgeStore(dbB).Revision(ctx); rev != syncB.Revision() || rev != 1 {
			t.Fatalf("store revision %d, built %d", rev, syncB.Revision())
		}
	})
}

// TestConcurrentEditsConflict: two admins saving the same version — one
// wins, the other gets ErrConflict; nothing is lost silently.
func TestConcurrentEditsConflict(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := gormstoretest.NewStorage(t, driver)
		mA, mB := newManager(t, gormstoretest.OpenStorage(t, cfg)), newManager(t, gormstoretest.OpenStorage(t, cfg))
		e, err := mA.Update(ctx, "a", "wifi", 0, knowledge.Draft{Question: "公司 WiFi 密码是多少", Answer: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, m := range []*knowledge.Manager{mA, mB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = m.Update(ctx, "x", "wifi", e.Version, knowledge.Draft{Question: "公司 WiFi 密码是多少", Answer: "v2"})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, knowledge.ErrConflict):
				t.Fatalf("unexpected error %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of 2 concurrent saves of one version won, errs %v", ok, errs)
		}
	})
}
