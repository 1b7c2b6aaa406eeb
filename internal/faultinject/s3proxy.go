package faultinject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3Proxy is a reverse proxy on 127.0.0.1 in front of an S3 endpoint (path-style
// requests) that makes requests fail, at the rate set with SetRate, in one of the
// ways that request can fail:
//
//   - every operation but CreateBucket: Refuse (503 before forwarding);
//   - PutObject, UploadPart: Cut (the connection is closed after part of the request
//     body, which is not forwarded) and CommitThenFail (forwarded, then answered 500);
//   - CreateMultipartUpload, CompleteMultipartUpload, AbortMultipartUpload,
//     DeleteObject(s), CopyObject: CommitThenFail;
//   - GetObject: HalfRead (the full Content-Length, half the body, then the
//     connection is closed);
//   - ListObjects(V2), ListMultipartUploads, ListParts: ListFail (half the listing,
//     then the connection is closed).
//
// Request n of an operation fails, and how, according to a hash of the seed, the
// operation's name and n.
type S3Proxy struct {
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	srv    *http.Server
	url    string
	served chan error
	seed   uint64

	mu      sync.Mutex
	rate    int // ppm
	enabled []Kind
	focus   focus
	counts  Counts
}

// focus is a rate and kinds of their own for the requests on keys containing
// pattern (none when pattern is empty).
type focus struct {
	pattern string
	rate    int // ppm
	kinds   []Kind
}

// maxBuffered bounds a response the proxy holds to fail it after the fact (a
// commit-then-fail, a half read); a larger one is answered 500 (counted as the
// fault it was to get).
const maxBuffered = 256 << 20

// s3Kinds gives the kinds each S3 operation can be made to fail in.
var s3Kinds = map[string][]Kind{
	"PutObject":               {Refuse, Cut, CommitThenFail},
	"UploadPart":              {Refuse, Cut, CommitThenFail},
	"CopyObject":              {Refuse, CommitThenFail},
	"CreateMultipartUpload":   {Refuse, CommitThenFail},
	"CompleteMultipartUpload": {Refuse, CommitThenFail},
	"AbortMultipartUpload":    {Refuse, CommitThenFail},
	"DeleteObject":            {Refuse, CommitThenFail},
	"DeleteObjects":           {Refuse, CommitThenFail},
	"GetObject":               {Refuse, HalfRead},
	"HeadObject":              {Refuse},
	"HeadBucket":              {Refuse},
	"ListObjects":             {Refuse, ListFail},
	"ListMultipartUploads":    {Refuse, ListFail},
	"ListParts":               {Refuse, ListFail},
	"CreateBucket":            nil,
	"Other":                   {Refuse},
}

// NewS3Proxy starts a proxy of target (an http:// URL) on a free port of
// 127.0.0.1, with faults off.
func NewS3Proxy(target string, seed uint64) (*S3Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("S3 fault proxy target %q: want an http:// URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("S3 fault proxy: listen: %w", err)
	}
	p := &S3Proxy{
		tr:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		url:    "http://" + ln.Addr().String(),
		served: make(chan error, 1),
		seed:   seed,
		counts: newCounts(),
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // signed requests name the host they were sent to
		},
		Transport: p.tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { p.served <- p.srv.Serve(ln) }()
	return p, nil
}

// URL returns the proxy's http:// URL, the endpoint to give S3 clients.
func (p *S3Proxy) URL() string { return p.url }

// SetRate sets the share of requests that fail, from 0 (faults off) to 1.
func (p *S3Proxy) SetRate(rate float64) error {
	r, err := ppm(rate)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.rate = r
	p.mu.Unlock()
	return nil
}

// SetKinds restricts the faults to kinds (none given: every kind).
func (p *S3Proxy) SetKinds(kinds ...Kind) {
	p.mu.Lock()
	p.enabled = append([]Kind(nil), kinds...)
	p.mu.Unlock()
}

// SetFocus gives the requests on object keys containing pattern a rate and kinds
// of their own (none given: every kind the operation can fail in), in place of
// SetRate's and SetKinds'; they are counted as operation "<operation>@<pattern>".
// An empty pattern ends the focus.
func (p *S3Proxy) SetFocus(pattern string, rate float64, kinds ...Kind) error {
	r, err := ppm(rate)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.focus = focus{pattern: pattern, rate: r, kinds: append([]Kind(nil), kinds...)}
	p.mu.Unlock()
	return nil
}

// Counts returns a copy of the requests and faults counted so far.
func (p *S3Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := newCounts()
	for op, n := range p.counts.Calls {
		c.Calls[op] = n
	}
	for op, m := range p.counts.InjectedByOp {
		for k, n := range m {
			for i := 0; i < n; i++ {
				c.inject(op, k)
			}
		}
	}
	return c
}

// Close stops the proxy, waiting up to 5 s for requests in flight.
func (p *S3Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if serr := <-p.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	p.tr.CloseIdleConnections()
	return err
}

// s3Op names the S3 operation of a path-style request.
func s3Op(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	if key == "" {
		switch {
		case r.Method == http.MethodGet && q.Has("uploads"):
			return "ListMultipartUploads"
		case r.Method == http.MethodGet:
			return "ListObjects"
		case r.Method == http.MethodPut:
			return "CreateBucket"
		case r.Method == http.MethodPost && q.Has("delete"):
			return "DeleteObjects"
		case r.Method == http.MethodHead:
			return "HeadBucket"
		}
		return "Other"
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case q.Has("uploadId"):
			return "UploadPart"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload"
		case q.Has("uploadId"):
			return "CompleteMultipartUpload"
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	case http.MethodGet:
		if q.Has("uploadId") {
			return "ListParts"
		}
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	}
	return "Other"
}

// decide counts the request and returns the fault to inject ("" for none) and
// the request's hash.
func (p *S3Proxy) decide(op, key string) (Kind, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kinds := s3Kinds[op]
	rate, enabled := p.rate, p.enabled
	if p.focus.pattern != "" && strings.Contains(key, p.focus.pattern) {
		rate, enabled = p.focus.rate, p.focus.kinds
		op += "@" + p.focus.pattern
	}
	p.counts.Calls[op]++
	f := fnv.New64a()
	f.Write([]byte(op))
	h := mix(p.seed ^ f.Sum64() ^ uint64(p.counts.Calls[op])*0x9e3779b97f4a7c15)
	k := pick(h, rate, allowed(kinds, enabled))
	if k != "" {
		p.counts.inject(op, k)
	}
	return k, h
}

// mix is splitmix64's finaliser.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ServeHTTP forwards the request, failing it as decided.
func (p *S3Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := s3Op(r)
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	kind, h := p.decide(op, key)
	switch kind {
	case "":
		p.rp.ServeHTTP(w, r)
	case Refuse:
		s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "faultinject: "+op+" refused")
	case Cut:
		// Read part of the body, forward none of it, drop the connection.
		keep := int64(h>>20) % 65536
		if r.ContentLength > 0 {
			keep = min(keep, r.ContentLength/2)
		}
		io.CopyN(io.Discard, r.Body, keep)
		panic(http.ErrAbortHandler)
	case CommitThenFail:
		if bw := p.forwardBuffered(r); bw.overflow {
			s3Error(w, http.StatusInternalServerError, "InternalError", "faultinject: response too large to hold")
			return
		}
		s3Error(w, http.StatusInternalServerError, "InternalError", "faultinject: "+op+" done, reporting failure")
	case HalfRead, ListFail:
		bw := p.forwardBuffered(r)
		if bw.overflow {
			s3Error(w, http.StatusInternalServerError, "InternalError", "faultinject: response too large to hold")
			return
		}
		for k, v := range bw.h {
			w.Header()[k] = v
		}
		if bw.status != http.StatusOK {
			// Nothing to cut (a 404, a 304): the response goes as it is.
			w.WriteHeader(bw.status)
			w.Write(bw.buf.Bytes())
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(bw.buf.Len()))
		w.WriteHeader(bw.status)
		w.Write(bw.buf.Bytes()[:bw.buf.Len()/2])
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
}

// forwardBuffered forwards r and returns the whole response, held.
func (p *S3Proxy) forwardBuffered(r *http.Request) *bufferWriter {
	bw := &bufferWriter{h: http.Header{}}
	p.rp.ServeHTTP(bw, r)
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	return bw
}

// bufferWriter is a ResponseWriter that holds the response (up to maxBuffered).
type bufferWriter struct {
	h        http.Header
	status   int
	buf      bytes.Buffer
	overflow bool
}

func (b *bufferWriter) Header() http.Header { return b.h }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.buf.Len()+len(p) > maxBuffered {
		b.overflow = true
		return 0, errors.New("faultinject: response larger than the proxy holds")
	}
	return b.buf.Write(p)
}

// s3Error answers an S3 error document.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}
