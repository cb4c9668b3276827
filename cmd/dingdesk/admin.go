package main

import (
	"context"
	"io"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	"github.com/dingdesk/dingdesk/kbxlsx"
	"github.com/dingdesk/dingdesk/knowledge"
	"github.com/dingdesk/dingdesk/monitor"
	svcreport "github.com/dingdesk/dingdesk/report"
	"github.com/dingdesk/dingdesk/transcript"
	"github.com/dingdesk/dingdesk/web"
)

// adminConsole is the admin console's view of the domain packages
// (web.Admin): the managed knowledge and its reviewer, the Excel import,
// the monitor, the reports and the transcripts, all on the service's DB.
type adminConsole struct{ m *Main }

var _ web.Admin = adminConsole{}

func (a adminConsole) Monitor(ctx context.Context) (*monitor.Status, error) {
	return monitor.Read(ctx, gormstore.NewMonitorStore(a.m.DB), a.m.Config.Current(), a.m.Clock.Now(), nil)
}

func (a adminConsole) Unanswered(ctx context.Context) ([]knowledge.Question, []knowledge.AgentAnswer, error) {
	qs, err := a.m.Reviewer.Unanswered(ctx, knowledge.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	drafts, err := a.m.Reviewer.AgentAnswered(ctx, knowledge.ListOptions{Limit: 50})
	return qs, drafts, err
}

func (a adminConsole) AddAsSimilar(ctx context.Context, actor, question, entryID string) error {
	_, err := a.m.Reviewer.AddAsSimilar(ctx, actor, question, entryID)
	return err
}

func (a adminConsole) CreateFromQuestion(ctx context.Context, actor, question string, d knowledge.Draft) error {
	_, err := a.m.Reviewer.CreateEntry(ctx, actor, question, d)
	return err
}

func (a adminConsole) Ignore(ctx context.Context, actor, question string) error {
	return a.m.Reviewer.Ignore(ctx, actor, question)
}

func (a adminConsole) Entries(ctx context.Context, f knowledge.Filter) ([]knowledge.Entry, []knowledge.Category, error) {
	list, err := a.m.Knowledge.List(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	cats, err := a.m.Knowledge.Categories(ctx)
	return list, cats, err
}

func (a adminConsole) Entry(ctx context.Context, id string) (knowledge.Entry, error) {
	return a.m.Knowledge.Get(ctx, id)
}

func (a adminConsole) CreateEntry(ctx context.Context, actor string, d knowledge.Draft) (knowledge.Entry, error) {
	return a.m.Knowledge.Create(ctx, actor, d)
}

func (a adminConsole) UpdateEntry(ctx context.Context, actor, id string, version int64, d knowledge.Draft) (knowledge.Entry, error) {
	return a.m.Knowledge.Update(ctx, actor, id, version, d)
}

func (a adminConsole) SetDisabled(ctx context.Context, actor, id string, disabled bool) error {
	_, err := a.m.Knowledge.SetDisabled(ctx, actor, id, disabled)
	return err
}

func (a adminConsole) DeleteEntry(ctx context.Context, actor, id string) error {
	return a.m.Knowledge.Delete(ctx, actor, id)
}

func (a adminConsole) StageImport(ctx context.Context, actor string, r io.Reader) (string, *knowledge.Plan, error) {
	return kbxlsx.Stage(ctx, a.m.Knowledge, gormstore.NewKnowledgeStore(a.m.DB), actor, r)
}

func (a adminConsole) ConfirmImport(ctx context.Context, actor, token string) (*knowledge.Plan, int, error) {
	return a.m.Knowledge.ConfirmImport(ctx, gormstore.NewKnowledgeStore(a.m.DB), actor, token)
}

func (a adminConsole) Export(ctx context.Context, w io.Writer) error {
	entries, err := a.m.Knowledge.List(ctx, knowledge.Filter{Disabled: true})
	if err != nil {
		return err
	}
	return kbxlsx.Write(w, entries)
}

func (a adminConsole) Report(ctx context.Context, o svcreport.Options) (*svcreport.Report, error) {
	return svcreport.Build(ctx, gormstore.NewReportStore(a.m.DB), o)
}

func (a adminConsole) ReportSessions(ctx context.Context, from, to time.Time, loc *time.Location) ([]svcreport.Session, error) {
	return svcreport.Sessions(ctx, gormstore.NewReportStore(a.m.DB), from, to, loc)
}

func (a adminConsole) Transcripts(ctx context.Context, q transcript.Query) ([]transcript.Session, error) {
	return transcript.Search(ctx, gormstore.NewTranscriptStore(a.m.DB), q)
}

func (a adminConsole) Transcript(ctx context.Context, id int64) (*transcript.Transcript, error) {
	return transcript.Open(ctx, gormstore.NewTranscriptStore(a.m.DB), id)
}
