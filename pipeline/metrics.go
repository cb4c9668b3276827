package pipeline

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics are the pipeline's counters, served at /metrics in Prometheus
// text format (written by hand: a handful of counters do not justify a
// client library).
type Metrics struct {
	Accepted, Duplicates, AcceptErrors atomic.Int64
	Handled, HandleErrors              atomic.Int64
	Sent, Retried, Failed              atomic.Int64
}

// WriteTo writes the counters in Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, c := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"dingdesk_inbound_accepted_total", "Inbound messages stored for handling.", &m.Accepted},
		{"dingdesk_inbound_duplicates_total", "Redeliveries of an already accepted msgId, ignored.", &m.Duplicates},
		{"dingdesk_inbound_store_errors_total", "Inbound messages refused because storage failed.", &m.AcceptErrors},
		{"dingdesk_inbound_handled_total", "Inbound messages handled by the engine.", &m.Handled},
		{"dingdesk_inbound_handle_errors_total", "Engine attempts that failed and were retried.", &m.HandleErrors},
		{"dingdesk_outbound_sent_total", "Outbound messages delivered.", &m.Sent},
		{"dingdesk_outbound_retries_total", "Outbound attempts that failed and were scheduled again.", &m.Retried},
		{"dingdesk_outbound_failed_total", "Outbound messages given up and recorded as failed.", &m.Failed},
	} {
		k, err := WriteCounter(w, c.name, c.help, c.v.Load())
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// WriteCounter writes one counter in Prometheus text format (for counters
// kept outside Metrics, such as the storage's).
func WriteCounter(w io.Writer, name, help string, v int64) (int, error) {
	return fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
}
