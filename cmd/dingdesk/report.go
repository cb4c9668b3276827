package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dingdesk/dingdesk/gormstore"
	svcreport "github.com/dingdesk/dingdesk/report"
)

const reportUsage = `Usage:
  dingdesk report [-c dingdesk.yaml] [--from DATE] [--to DATE] [--by day|week|month|group|agent[,…]]
                  [--format table|csv] [--sessions] [--tz ZONE] [-o FILE]

  --from, --to   local dates (2006-01-02), both included; default the last 7 days
  --by           rows: a period (day, week, month) and/or group and agent, comma-separated
                 (day,group,agent: one row per day × skill group × agent); default day
  --format       table (default) or csv (UTF-8 with BOM, opens in Excel)
  --sessions     one CSV row per session instead
  --tz           time zone of the dates; default the first service rule's
`

// runReport is the "report" command: service reports for cron and scripts.
func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage) }
	path := fs.String("c", "dingdesk.yaml", "config file")
	fromS := fs.String("from", "", "first date")
	toS := fs.String("to", "", "last date")
	by := fs.String("by", "day", "rows")
	format := fs.String("format", "table", "table or csv")
	sessions := fs.Bool("sessions", false, "one row per session (csv)")
	tz := fs.String("tz", "", "time zone")
	outPath := fs.String("o", "", "write to FILE instead of stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %q\n\n%s", fs.Args(), reportUsage)
		return 2
	}
	opts, err := reportOptions(*by, *fromS, *toS)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n\n%s", err, reportUsage)
		return 2
	}
	if *format != "table" && *format != "csv" {
		fmt.Fprintf(stderr, "--format: want table or csv, not %q\n", *format)
		return 2
	}
	cfg, ok := toolConfig(*path, stderr, "storage")
	if !ok {
		return 1
	}
	zone := *tz
	if zone == "" && len(cfg.ServiceRules) > 0 {
		zone = cfg.ServiceRules[0].Timezone
	}
	if zone == "" {
		zone = "Asia/Shanghai"
	}
	if opts.Location, err = time.LoadLocation(zone); err != nil {
		fmt.Fprintf(stderr, "--tz: %v\n", err)
		return 2
	}
	if *fromS == "" && *toS == "" { // the last 7 days, in the report's zone
		today := time.Now().In(opts.Location)
		opts.To = today
		opts.From = today.AddDate(0, 0, -6)
	}
	ctx := context.Background()
	db, ok := openToolDB(ctx, cfg, stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	st := gormstore.NewReportStore(db)
	names := svcreport.Names{}
	for _, g := range cfg.SkillGroups {
		names[g.Name] = g.DisplayName
	}

	write := func(out io.Writer) error {
		if *sessions {
			list, err := svcreport.Sessions(ctx, st, opts.From, opts.To, opts.Location)
			if err != nil {
				return err
			}
			return svcreport.WriteSessionsCSV(out, list, opts.Location, names)
		}
		rep, err := svcreport.Build(ctx, st, opts)
		if err != nil {
			return err
		}
		if *format == "csv" {
			return svcreport.WriteCSV(out, rep, names)
		}
		return svcreport.WriteTable(out, rep, names)
	}
	if *outPath != "" {
		err = writeFileAtomic(*outPath, write)
	} else {
		err = write(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	return 0
}

// reportOptions parses --by, --from and --to.
func reportOptions(by, from, to string) (svcreport.Options, error) {
	var o svcreport.Options
	for _, part := range strings.Split(by, ",") {
		switch p := strings.TrimSpace(part); p {
		case "day", "week", "month":
			if o.Period != svcreport.None {
				return o, fmt.Errorf("--by: one period only (day, week or month)")
			}
			o.Period = svcreport.Period(p)
		case "group":
			o.ByGroup = true
		case "agent":
			o.ByAgent = true
		default:
			return o, fmt.Errorf("--by: unknown %q (want day, week, month, group, agent)", p)
		}
	}
	var err error
	if from != "" {
		if o.From, err = time.Parse(time.DateOnly, from); err != nil {
			return o, fmt.Errorf("--from: want a date like 2026-12-01, not %q", from)
		}
	}
	if to != "" {
		if o.To, err = time.Parse(time.DateOnly, to); err != nil {
			return o, fmt.Errorf("--to: want a date like 2026-12-31, not %q", to)
		}
	}
	switch {
	case from != "" && to == "":
		o.To = time.Now()
	case from == "" && to != "":
		o.From = o.To.AddDate(0, 0, -6)
	}
	if (from != "" || to != "") && o.To.Before(o.From) {
		return o, fmt.Errorf("--to %s is before --from %s", o.To.Format(time.DateOnly), o.From.Format(time.DateOnly))
	}
	return o, nil
}
