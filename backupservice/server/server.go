// Package server is the node's backup service over a ledgerdb: an http.Handler that
// answers the endpoints of package backupservice, streaming state snapshots,
// transactions and epoch-ending ledger infos as length-prefixed records (package
// records) and serving the proofs of package ledger/proof, with per-write timeouts
// and metrics. The protocol is specified in docs/backup-service.md.
package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/records"
)

// Options configures a Server.
type Options struct {
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
	// WriteTimeout bounds each write of a response to the connection (default 30s):
	// a client that stops reading is cut off, however long the stream.
	WriteTimeout time.Duration
	// Registerer receives the service's metrics (nil: none).
	Registerer prometheus.Registerer
}

// Server serves the backup service over a ledgerdb. It is an http.Handler; Wait
// blocks until every request it is handling has returned.
type Server struct {
	db      *ledgerdb.DB
	log     *slog.Logger
	timeout time.Duration
	mux     *http.ServeMux
	wg      sync.WaitGroup

	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	records  *prometheus.CounterVec
	inFlight prometheus.Gauge
}

// New returns the backup service over db.
func New(db *ledgerdb.DB, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	s := &Server{
		db:      db,
		log:     o.Logger,
		timeout: o.WriteTimeout,
		mux:     http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgervault_backup_service_requests_total",
			Help: "Backup service requests by endpoint and outcome (HTTP status, or aborted for a stream cut after its header).",
		}, []string{"endpoint", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgervault_backup_service_response_bytes_total",
			Help: "Response body bytes written by the backup service, by endpoint.",
		}, []string{"endpoint"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledgervault_backup_service_records_total",
			Help: "Records streamed by the backup service, by endpoint.",
		}, []string{"endpoint"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledgervault_backup_service_requests_in_flight",
			Help: "Backup service requests being served.",
		}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.bytes, s.records, s.inFlight} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register backup service metrics: %w", err)
			}
		}
	}
	routes := []struct {
		endpoint, params string
		h                func(*request) error
	}{
		{backupservice.EndpointDBState, "", s.dbState},
		{backupservice.EndpointStateItemCount, "/{version}", s.stateItemCount},
		{backupservice.EndpointStateSnapshotChunk, "/{version}/{start}/{limit}", s.stateSnapshotChunk},
		{backupservice.EndpointStateRangeProof, "/{version}/{key_hash}", s.stateRangeProof},
		{backupservice.EndpointStateRootProof, "/{version}", s.stateRootProof},
		{backupservice.EndpointEpochEndingLedgerInfos, "/{start_epoch}/{end_epoch}", s.epochEndings},
		{backupservice.EndpointTransactions, "/{first}/{count}", s.transactions},
		{backupservice.EndpointTransactionRangeProof, "/{first}/{last}", s.transactionRangeProof},
	}
	for _, r := range routes {
		s.mux.Handle("/"+r.endpoint+r.params, s.handler(r.endpoint, r.h))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.requests.WithLabelValues("unknown", "404").Inc()
		httpError(w, http.StatusNotFound, fmt.Sprintf("no backup service endpoint %s", r.URL.Path))
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Wait blocks until every request being served has returned. Call it after the HTTP
// server is shut down and before closing the store.
func (s *Server) Wait() { s.wg.Wait() }

// request is one request being served.
type request struct {
	w        http.ResponseWriter
	r        *http.Request
	ctx      context.Context
	endpoint string
	started  bool // the response header was sent
	sent     int64
}

// statusError is an error with an HTTP status, reported before a response starts.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &statusError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// errAborted marks a stream that failed after its header was sent.
var errAborted = errors.New("stream aborted")

func (s *Server) handler(endpoint string, h func(*request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			s.requests.WithLabelValues(endpoint, "405").Inc()
			httpError(w, http.StatusMethodNotAllowed, "the backup service answers GET only")
			return
		}
		req := &request{w: w, r: r, ctx: r.Context(), endpoint: endpoint}
		err := h(req)
		s.bytes.WithLabelValues(endpoint).Add(float64(req.sent))
		if err == nil {
			s.requests.WithLabelValues(endpoint, "200").Inc()
			return
		}
		if req.started {
			// Too late for a status: cut the connection so that the client sees an
			// error (no end-of-stream trailer), never a short stream that looks complete.
			s.requests.WithLabelValues(endpoint, "aborted").Inc()
			if r.Context().Err() == nil {
				s.log.Warn("backup service stream aborted", "endpoint", endpoint, "path", r.URL.Path, "err", err)
			}
			panic(http.ErrAbortHandler)
		}
		code := http.StatusInternalServerError
		var se *statusError
		switch {
		case errors.As(err, &se):
			code = se.code
		case errors.Is(err, ledgerdb.ErrNotFound):
			code = http.StatusNotFound
		case r.Context().Err() != nil:
			code = 499 // client went away; nobody reads this
		default:
			s.log.Error("backup service request failed", "endpoint", endpoint, "path", r.URL.Path, "err", err)
		}
		s.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
		httpError(w, code, err.Error())
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	if len(msg) > backupservice.MaxErrorMessageSize-1 {
		msg = msg[:backupservice.MaxErrorMessageSize-1]
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func (q *request) uintParam(name string) (uint64, error) {
	s := q.r.PathValue(name)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, badRequest("%s: parameter %s=%q is not a decimal unsigned 64-bit integer", q.endpoint, name, s)
	}
	return v, nil
}

// reply sends a whole (small) response with its Content-Length, so that a client
// detects a truncated body.
func (q *request) reply(contentType string, body []byte) error {
	h := q.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	q.started = true
	q.w.WriteHeader(http.StatusOK)
	n, err := q.w.Write(body)
	q.sent += int64(n)
	return err
}

// committed checks that version v is committed.
func (s *Server) committed(q *request, v uint64) (ledgerdb.Summary, error) {
	sum, err := s.db.Summary(q.ctx)
	if err != nil {
		return sum, err
	}
	if v >= sum.NextVersion {
		return sum, notFound("%s: version %d is beyond the committed data (next version %d)", q.endpoint, v, sum.NextVersion)
	}
	return sum, nil
}

func (s *Server) dbState(q *request) error {
	sum, err := s.db.Summary(q.ctx)
	if err != nil {
		return err
	}
	st := proof.DBState{NextVersion: sum.NextVersion, Epoch: sum.LatestEpoch, FirstTxnVersion: sum.FirstTxnVersion}
	if sum.HasStateBase {
		v := sum.StateBaseVersion
		st.StateBaseVersion = &v
	}
	if sum.LatestLedgerInfo != nil {
		v := sum.LatestLedgerInfo.LedgerInfo.Version
		st.CommittedVersion = &v
		if st.LatestLedgerInfo, err = sum.LatestLedgerInfo.Encode(); err != nil {
			return err
		}
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	return q.reply("application/json", append(b, '\n'))
}

func (s *Server) stateRoot(q *request, v uint64) (uint64, error) {
	if _, err := s.committed(q, v); err != nil {
		return 0, err
	}
	root, err := s.db.StateRoot(q.ctx, v)
	if errors.Is(err, ledgerdb.ErrNotFound) {
		return 0, notFound("%s: no state stored at version %d (the store may start from a later state snapshot)", q.endpoint, v)
	}
	if err != nil {
		return 0, err
	}
	return root.LeafCount, nil
}

func (s *Server) stateItemCount(q *request) error {
	v, err := q.uintParam("version")
	if err != nil {
		return err
	}
	n, err := s.stateRoot(q, v)
	if err != nil {
		return err
	}
	return q.reply("application/json", strconv.AppendUint(nil, n, 10))
}

func (s *Server) stateSnapshotChunk(q *request) error {
	v, err := q.uintParam("version")
	if err != nil {
		return err
	}
	start, err := q.uintParam("start")
	if err != nil {
		return err
	}
	limit, err := q.uintParam("limit")
	if err != nil {
		return err
	}
	if limit == 0 {
		return badRequest("%s: limit must be at least 1", q.endpoint)
	}
	n, err := s.stateRoot(q, v)
	if err != nil {
		return err
	}
	if start > n || (start == n && n > 0) {
		return notFound("%s: start index %d is beyond the %d state items at version %d", q.endpoint, start, n, v)
	}
	count := min(limit, n-start)
	return s.stream(q, count, func(rw *records.Writer) error {
		return s.db.StateValues(q.ctx, v, start, count, func(_ uint64, key, value []byte) error {
			b, err := rw.Reserve(records.KeyValueSize(key, value))
			if err != nil {
				return err
			}
			records.PutKeyValue(b, key, value)
			return nil
		})
	})
}

func (s *Server) stateRangeProof(q *request) error {
	v, err := q.uintParam("version")
	if err != nil {
		return err
	}
	khs := q.r.PathValue("key_hash")
	raw, err := hex.DecodeString(khs)
	if err != nil || len(raw) != ledger.HashSize {
		return badRequest("%s: key_hash %q is not %d bytes of hex", q.endpoint, khs, ledger.HashSize)
	}
	if _, err := s.stateRoot(q, v); err != nil {
		return err
	}
	p, err := s.db.StateRangeProof(q.ctx, v, ledger.Hash(raw))
	if err != nil {
		return err
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	return q.reply("application/octet-stream", b)
}

func (s *Server) stateRootProof(q *request) error {
	v, err := q.uintParam("version")
	if err != nil {
		return err
	}
	if _, err := s.committed(q, v); err != nil {
		return err
	}
	p, err := s.db.StateRootProof(q.ctx, v)
	if err != nil {
		return err
	}
	b, err := p.Encode()
	if err != nil {
		return err
	}
	return q.reply(backupservice.CBORContentType, b)
}

func (s *Server) epochEndings(q *request) error {
	start, err := q.uintParam("start_epoch")
	if err != nil {
		return err
	}
	end, err := q.uintParam("end_epoch")
	if err != nil {
		return err
	}
	if start >= end {
		return badRequest("%s: start_epoch %d must be below end_epoch %d", q.endpoint, start, end)
	}
	sum, err := s.db.Summary(q.ctx)
	if err != nil {
		return err
	}
	ended := sum.LatestEpoch // epochs [0, ended) have ended
	if sum.LatestLedgerInfo != nil && sum.LatestLedgerInfo.LedgerInfo.EndsEpoch() {
		ended++
	}
	if sum.LatestLedgerInfo == nil || end > ended {
		return notFound("%s: epochs [%d, %d) requested, only epochs before %d have ended", q.endpoint, start, end, ended)
	}
	if _, err := s.db.EpochEnding(q.ctx, start); errors.Is(err, ledgerdb.ErrNotFound) {
		return notFound("%s: the ending of epoch %d is not stored", q.endpoint, start)
	}
	return s.stream(q, end-start, func(rw *records.Writer) error {
		return s.db.EpochEndings(q.ctx, start, end, func(_ uint64, raw []byte) error {
			return rw.WriteRecord(raw)
		})
	})
}

func (s *Server) txnRange(q *request, first, last uint64) error {
	sum, err := s.committed(q, last)
	if err != nil {
		return err
	}
	if first < sum.FirstTxnVersion {
		return notFound("%s: transactions before version %d are not stored", q.endpoint, sum.FirstTxnVersion)
	}
	return nil
}

func (s *Server) transactions(q *request) error {
	first, err := q.uintParam("first")
	if err != nil {
		return err
	}
	count, err := q.uintParam("count")
	if err != nil {
		return err
	}
	if count == 0 || first+count < first {
		return badRequest("%s: count %d must be at least 1 and not overflow", q.endpoint, count)
	}
	if err := s.txnRange(q, first, first+count-1); err != nil {
		return err
	}
	return s.stream(q, count, func(rw *records.Writer) error {
		return s.db.Transactions(q.ctx, first, count, func(_ uint64, raw []byte) error {
			return rw.WriteRecord(raw)
		})
	})
}

func (s *Server) transactionRangeProof(q *request) error {
	first, err := q.uintParam("first")
	if err != nil {
		return err
	}
	last, err := q.uintParam("last")
	if err != nil {
		return err
	}
	if first > last {
		return badRequest("%s: first %d is after last %d", q.endpoint, first, last)
	}
	if err := s.txnRange(q, first, last); err != nil {
		return err
	}
	li, err := s.db.LedgerInfoCovering(q.ctx, last)
	if err != nil {
		return err
	}
	p, err := s.db.TransactionRangeProof(q.ctx, first, last, li.LedgerInfo.Version)
	if err != nil {
		return err
	}
	b, err := (&proof.TransactionRange{Proof: p, LedgerInfo: li}).Encode()
	if err != nil {
		return err
	}
	return q.reply(backupservice.CBORContentType, b)
}

// stream sends a record stream of count records produced by fill, then the trailer.
func (s *Server) stream(q *request, count uint64, fill func(*records.Writer) error) error {
	h := q.w.Header()
	h.Set("Content-Type", backupservice.RecordsContentType)
	h.Set(backupservice.RecordCountHeader, strconv.FormatUint(count, 10))
	h.Set("Cache-Control", "no-store")
	q.started = true
	q.w.WriteHeader(http.StatusOK)
	sw := &streamWriter{w: q.w, rc: http.NewResponseController(q.w), timeout: s.timeout, sent: &q.sent}
	// Clear the per-write deadline afterwards: it would otherwise outlive the
	// request on a kept-alive connection.
	defer func() { _ = sw.rc.SetWriteDeadline(time.Time{}) }()
	rw := records.NewWriter(sw)
	err := fill(rw)
	s.records.WithLabelValues(q.endpoint).Add(float64(rw.Count()))
	if err == nil && rw.Count() != count {
		err = fmt.Errorf("%s: produced %d records, announced %d", q.endpoint, rw.Count(), count)
	}
	if err == nil {
		err = rw.Close()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errAborted, err)
	}
	return nil
}

// streamWriter writes to the response with a fresh write deadline per write and
// flushes, so that data reaches the client as it is produced.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	sent    *int64
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)) // not every ResponseWriter supports deadlines
	n, err := sw.w.Write(p)
	*sw.sent += int64(n)
	if err != nil {
		return n, err
	}
	if err := sw.rc.Flush(); err != nil {
		return n, err
	}
	return n, nil
}
