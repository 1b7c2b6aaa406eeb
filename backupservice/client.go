package backupservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/records"
)

// ClientOptions configures a Client.
type ClientOptions struct {
	// RequestTimeout bounds a whole non-streamed request, and a stream request until
	// its response header arrives (default 30s).
	RequestTimeout time.Duration
	// ReadTimeout bounds the wait for each read of a stream body: a stream that
	// delivers no bytes for this long fails (default 30s).
	ReadTimeout time.Duration
	// MaxRecordSize is the largest stream record accepted; a longer length prefix is
	// an error before any allocation (default records.DefaultMaxRecordSize).
	MaxRecordSize int
	// DialTimeout bounds connection set-up (default 10s).
	DialTimeout time.Duration
}

// Client is a typed client of the backup service. It is safe for concurrent use;
// Close releases its idle connections.
type Client struct {
	base string
	hc   *http.Client
	tr   *http.Transport
	o    ClientOptions
}

// Errors reported by the client.
var (
	// ErrNotFound matches (errors.Is) a 404 answer: data beyond what the node has
	// committed or stores.
	ErrNotFound = errors.New("backup service: not found")
	// ErrReadTimeout is the cause of a stream cancelled because no bytes arrived
	// within ReadTimeout.
	ErrReadTimeout = errors.New("backup service: read timeout")
	// ErrRequestTimeout is the cause of a request cancelled after RequestTimeout.
	ErrRequestTimeout = errors.New("backup service: request timeout")
)

// HTTPError is a non-200 answer of the service.
type HTTPError struct {
	Endpoint   string
	StatusCode int
	Message    string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("backup service %s: HTTP %d: %s", e.Endpoint, e.StatusCode, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// New returns a client of the service at addr ("host:port" or an http:// URL).
func New(addr string, o ClientOptions) (*Client, error) {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = records.DefaultMaxRecordSize
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	base := addr
	if !strings.Contains(addr, "://") {
		base = "http://" + addr
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("backup service address %q: want host:port or http://host:port", addr)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: o.DialTimeout}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Client{base: "http://" + u.Host, hc: &http.Client{Transport: tr}, tr: tr, o: o}, nil
}

// Close closes the client's idle connections. Streams still open keep working until
// closed.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// get sends a GET and returns the 200 response; the returned cancel must be called
// once the body is done with. headerOnly limits the request timeout to the wait for
// the response header.
func (c *Client) get(ctx context.Context, endpoint string, headerOnly bool, params ...uint64) (*http.Response, context.CancelCauseFunc, *time.Timer, error) {
	var sb strings.Builder
	sb.WriteString(c.base)
	sb.WriteString("/")
	sb.WriteString(endpoint)
	for _, p := range params {
		sb.WriteString("/")
		sb.WriteString(strconv.FormatUint(p, 10))
	}
	return c.getURL(ctx, endpoint, sb.String(), headerOnly)
}

func (c *Client) getURL(ctx context.Context, endpoint, u string, headerOnly bool) (*http.Response, context.CancelCauseFunc, *time.Timer, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.o.RequestTimeout, func() { cancel(ErrRequestTimeout) })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, nil, nil, fmt.Errorf("backup service %s: %w", endpoint, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		timer.Stop()
		err = causeOf(ctx, err)
		cancel(nil)
		return nil, nil, nil, fmt.Errorf("backup service %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorMessageSize))
		resp.Body.Close()
		timer.Stop()
		cancel(nil)
		return nil, nil, nil, &HTTPError{Endpoint: endpoint, StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	if headerOnly {
		timer.Stop()
		timer = nil
	}
	return resp, cancel, timer, nil
}

// causeOf replaces a context error by the cancellation cause (a timeout of ours).
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && (errors.Is(c, ErrReadTimeout) || errors.Is(c, ErrRequestTimeout)) {
		if errors.Is(err, c) {
			return err
		}
		return fmt.Errorf("%w (%v)", c, err)
	}
	return err
}

// small fetches a whole non-streamed response of at most limit bytes.
func (c *Client) small(ctx context.Context, endpoint string, limit int64, u string) ([]byte, error) {
	resp, cancel, timer, err := c.getURL(ctx, endpoint, u, false)
	if err != nil {
		return nil, err
	}
	defer cancel(nil)
	defer timer.Stop()
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("backup service %s: response of %d bytes exceeds the limit of %d", endpoint, resp.ContentLength, limit)
	}
	if resp.ContentLength < 0 {
		return nil, fmt.Errorf("backup service %s: response without Content-Length", endpoint)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("backup service %s: read response: %w", endpoint, causeOf(resp.Request.Context(), err))
	}
	if int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("backup service %s: response of %d bytes, announced %d", endpoint, len(b), resp.ContentLength)
	}
	return b, nil
}

func (c *Client) url(endpoint string, params ...string) string {
	return c.base + "/" + endpoint + "/" + strings.Join(params, "/")
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// DBState returns what the node's store holds.
func (c *Client) DBState(ctx context.Context) (proof.DBState, error) {
	b, err := c.small(ctx, EndpointDBState, proof.MaxDBStateSize, c.base+"/"+EndpointDBState)
	if err != nil {
		return proof.DBState{}, err
	}
	return proof.DecodeDBState(b)
}

// StateItemCount returns the number of state items at a version.
func (c *Client) StateItemCount(ctx context.Context, version uint64) (uint64, error) {
	b, err := c.small(ctx, EndpointStateItemCount, 32, c.url(EndpointStateItemCount, u64(version)))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("backup service %s: bad count %q", EndpointStateItemCount, b)
	}
	return n, nil
}

// StateRangeProof returns the range proof of all state items up to (and including)
// the one with key hash last at a version.
func (c *Client) StateRangeProof(ctx context.Context, version uint64, last ledger.Hash) (smt.RangeProof, error) {
	b, err := c.small(ctx, EndpointStateRangeProof, smt.MaxRangeProofSize, c.url(EndpointStateRangeProof, u64(version), last.String()))
	if err != nil {
		return smt.RangeProof{}, err
	}
	p, err := smt.DecodeRangeProof(b)
	if err != nil {
		return smt.RangeProof{}, fmt.Errorf("backup service %s: %w", EndpointStateRangeProof, err)
	}
	return p, nil
}

// StateRootProof returns the proof that ties the state root after version to a signed
// ledger info.
func (c *Client) StateRootProof(ctx context.Context, version uint64) (proof.StateRoot, error) {
	b, err := c.small(ctx, EndpointStateRootProof, proof.MaxSize, c.url(EndpointStateRootProof, u64(version)))
	if err != nil {
		return proof.StateRoot{}, err
	}
	return proof.DecodeStateRoot(b)
}

// TransactionRangeProof returns the accumulator range proof of transactions [first,
// last] and the signed ledger info it is against.
func (c *Client) TransactionRangeProof(ctx context.Context, first, last uint64) (proof.TransactionRange, error) {
	b, err := c.small(ctx, EndpointTransactionRangeProof, proof.MaxSize, c.url(EndpointTransactionRangeProof, u64(first), u64(last)))
	if err != nil {
		return proof.TransactionRange{}, err
	}
	return proof.DecodeTransactionRange(b)
}

// StateSnapshotChunk streams at most limit state items at version, from item index
// start, in key-hash order.
func (c *Client) StateSnapshotChunk(ctx context.Context, version, start, limit uint64) (*StateStream, error) {
	s, err := c.stream(ctx, EndpointStateSnapshotChunk, version, start, limit)
	if err != nil {
		return nil, err
	}
	if s.expected > limit {
		s.Close()
		return nil, fmt.Errorf("backup service %s: announces %d records for a limit of %d", EndpointStateSnapshotChunk, s.expected, limit)
	}
	return &StateStream{s: s, index: start - 1}, nil
}

// Transactions streams the transactions (with infos, events and write sets) of
// versions [first, first+count).
func (c *Client) Transactions(ctx context.Context, first, count uint64) (*TransactionStream, error) {
	s, err := c.stream(ctx, EndpointTransactions, first, count)
	if err != nil {
		return nil, err
	}
	if s.expected != count {
		s.Close()
		return nil, fmt.Errorf("backup service %s: announces %d records, %d requested", EndpointTransactions, s.expected, count)
	}
	return &TransactionStream{s: s, version: first - 1}, nil
}

// EpochEndingLedgerInfos streams the signed ledger infos that ended epochs
// [startEpoch, endEpoch).
func (c *Client) EpochEndingLedgerInfos(ctx context.Context, startEpoch, endEpoch uint64) (*LedgerInfoStream, error) {
	s, err := c.stream(ctx, EndpointEpochEndingLedgerInfos, startEpoch, endEpoch)
	if err != nil {
		return nil, err
	}
	if endEpoch < startEpoch || s.expected != endEpoch-startEpoch {
		s.Close()
		return nil, fmt.Errorf("backup service %s: announces %d records for epochs [%d, %d)", EndpointEpochEndingLedgerInfos, s.expected, startEpoch, endEpoch)
	}
	return &LedgerInfoStream{s: s, epoch: startEpoch - 1}, nil
}

func (c *Client) stream(ctx context.Context, endpoint string, params ...uint64) (*Stream, error) {
	resp, cancel, _, err := c.get(ctx, endpoint, true, params...)
	if err != nil {
		return nil, err
	}
	s := &Stream{endpoint: endpoint, body: resp.Body, ctx: resp.Request.Context(), cancel: cancel, timeout: c.o.ReadTimeout}
	s.timer = time.AfterFunc(c.o.ReadTimeout, func() { cancel(ErrReadTimeout) })
	s.timer.Stop() // armed only while a read waits
	s.rr = records.NewReader(idleReader{s}, c.o.MaxRecordSize)
	if ct := resp.Header.Get("Content-Type"); ct != RecordsContentType {
		s.Close()
		return nil, fmt.Errorf("backup service %s: content type %q, want %q", endpoint, ct, RecordsContentType)
	}
	n, err := strconv.ParseUint(resp.Header.Get(RecordCountHeader), 10, 64)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("backup service %s: bad %s header %q", endpoint, RecordCountHeader, resp.Header.Get(RecordCountHeader))
	}
	s.expected = n
	return s, nil
}

// Stream is a record stream from the service: Next, Record, Err, Close. A stream that
// ends without its trailer, or whose trailer disagrees with the records read or the
// announced count, fails with an error. Close must be called; no goroutine outlives it.
type Stream struct {
	endpoint string
	body     io.ReadCloser
	ctx      context.Context
	cancel   context.CancelCauseFunc
	timer    *time.Timer
	timeout  time.Duration
	rr       *records.Reader
	expected uint64
	err      error
	closed   bool
	waited   time.Duration // in reads of the body
}

// idleReader resets the idle timer on every read of the body.
type idleReader struct{ s *Stream }

func (r idleReader) Read(p []byte) (int, error) {
	// Only time spent waiting for the server counts: a slow consumer between reads
	// is not an idle server.
	t0 := time.Now()
	r.s.timer.Reset(r.s.timeout)
	n, err := r.s.body.Read(p)
	r.s.timer.Stop()
	r.s.waited += time.Since(t0)
	if err != nil && !errors.Is(err, io.EOF) {
		err = causeOf(r.s.ctx, err)
	}
	return n, err
}

// Next reads the next record; false at the end of the stream or on an error.
func (s *Stream) Next() bool {
	if s.err != nil || s.closed {
		return false
	}
	if s.rr.Count() >= s.expected {
		// Only the end of stream may follow.
		if s.rr.Next() {
			s.err = fmt.Errorf("backup service %s: more than the %d records announced", s.endpoint, s.expected)
			return false
		}
	} else if s.rr.Next() {
		return true
	}
	if err := s.rr.Err(); err != nil {
		s.err = fmt.Errorf("backup service %s: after %d of %d records: %w", s.endpoint, s.rr.Count(), s.expected, err)
		return false
	}
	if s.rr.Count() != s.expected {
		s.err = fmt.Errorf("backup service %s: stream complete with %d records, %d announced", s.endpoint, s.rr.Count(), s.expected)
		return false
	}
	s.release()
	return false
}

// Record returns the current record, valid until the next call to Next.
func (s *Stream) Record() []byte { return s.rr.Record() }

// Count returns the number of records read so far.
func (s *Stream) Count() uint64 { return s.rr.Count() }

// Expected returns the number of records the service announced.
func (s *Stream) Expected() uint64 { return s.expected }

// Err returns the error that ended the stream, nil after a complete, checked one.
func (s *Stream) Err() error { return s.err }

func (s *Stream) release() {
	if s.closed {
		return
	}
	s.closed = true
	s.timer.Stop()
	s.body.Close()
	s.cancel(nil)
}

// Close releases the stream. A stream closed before its end fails with an error
// from Err if read further.
func (s *Stream) Close() error {
	if !s.closed && s.err == nil && !s.rr.Done() {
		s.err = fmt.Errorf("backup service %s: stream closed before its end", s.endpoint)
	}
	s.release()
	return nil
}

// StateStream streams state items.
type StateStream struct {
	s          *Stream
	index      uint64
	key, value []byte
	err        error
}

// Next reads the next state item.
func (s *StateStream) Next() bool {
	if s.err != nil || !s.s.Next() {
		return false
	}
	s.index++
	k, v, err := records.SplitKeyValue(s.s.Record(), ledger.MaxKeySize)
	if err != nil {
		s.err = fmt.Errorf("backup service %s: item %d: %w", EndpointStateSnapshotChunk, s.index, err)
		s.s.release()
		return false
	}
	s.key, s.value = k, v
	return true
}

// Index returns the current item's index in the state at the version.
func (s *StateStream) Index() uint64 { return s.index }

// Key returns the current item's key, valid until the next call to Next.
func (s *StateStream) Key() []byte { return s.key }

// Value returns the current item's value, valid until the next call to Next.
func (s *StateStream) Value() []byte { return s.value }

// Record returns the current item's encoded record, valid until the next call to Next.
func (s *StateStream) Record() []byte { return s.s.Record() }

// Expected returns the number of items the service announced.
func (s *StateStream) Expected() uint64 { return s.s.expected }

// Waited returns the time spent so far waiting for the service: in reads of the
// response body, which a buffer makes one per many records (timing each record would
// cost more than decoding it).
func (s *StateStream) Waited() time.Duration { return s.s.waited }

// Err returns the error that ended the stream.
func (s *StateStream) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.s.Err()
}

// Close releases the stream.
func (s *StateStream) Close() error { return s.s.Close() }

// TransactionStream streams encoded transactions with their outputs.
type TransactionStream struct {
	s       *Stream
	version uint64
}

// Next reads the next transaction.
func (s *TransactionStream) Next() bool {
	if !s.s.Next() {
		return false
	}
	s.version++
	return true
}

// Version returns the current transaction's version.
func (s *TransactionStream) Version() uint64 { return s.version }

// Raw returns the canonical CBOR TransactionWithOutput, valid until the next Next.
func (s *TransactionStream) Raw() []byte { return s.s.Record() }

// Transaction decodes the current transaction.
func (s *TransactionStream) Transaction() (ledger.TransactionWithOutput, error) {
	t, err := ledger.DecodeTransactionWithOutput(s.s.Record())
	if err != nil {
		return ledger.TransactionWithOutput{}, fmt.Errorf("backup service transaction %d: %w", s.version, err)
	}
	return t, nil
}

// Err returns the error that ended the stream.
func (s *TransactionStream) Err() error { return s.s.Err() }

// Close releases the stream.
func (s *TransactionStream) Close() error { return s.s.Close() }

// LedgerInfoStream streams epoch-ending signed ledger infos.
type LedgerInfoStream struct {
	s     *Stream
	epoch uint64
}

// Next reads the next ledger info.
func (s *LedgerInfoStream) Next() bool {
	if !s.s.Next() {
		return false
	}
	s.epoch++
	return true
}

// Epoch returns the epoch the current ledger info ends.
func (s *LedgerInfoStream) Epoch() uint64 { return s.epoch }

// Raw returns the canonical CBOR LedgerInfoWithSignatures, valid until the next Next.
func (s *LedgerInfoStream) Raw() []byte { return s.s.Record() }

// LedgerInfo decodes the current ledger info and checks that it ends its epoch.
func (s *LedgerInfoStream) LedgerInfo() (ledger.LedgerInfoWithSignatures, error) {
	li, err := ledger.DecodeLedgerInfoWithSignatures(s.s.Record())
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("backup service epoch ending %d: %w", s.epoch, err)
	}
	if li.LedgerInfo.Epoch != s.epoch || !li.LedgerInfo.EndsEpoch() {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("backup service epoch ending %d: got a ledger info of epoch %d (ends epoch: %v)",
			s.epoch, li.LedgerInfo.Epoch, li.LedgerInfo.EndsEpoch())
	}
	return li, nil
}

// Err returns the error that ended the stream.
func (s *LedgerInfoStream) Err() error { return s.s.Err() }

// Close releases the stream.
func (s *LedgerInfoStream) Close() error { return s.s.Close() }
