// Package fakes3 holds what the project adds to gofakes3, the in-process S3
// emulator its tests and the kill campaign serve on 127.0.0.1.
package fakes3

import (
	"net/http"
	"strings"
	"sync"

	"github.com/johannesboyne/gofakes3"
)

// ConditionalComplete wraps a gofakes3 handler so that a conditional
// CompleteMultipartUpload (If-None-Match: *) of a key that exists is answered with
// 412 PreconditionFailed, as S3 does: gofakes3 v1.2.0 honours the header on
// PutObject but ignores it on CompleteMultipartUpload. Conditional writes are
// serialised by a mutex so that the emulated check-and-write is atomic. This is
// emulator support, not backend logic.
func ConditionalComplete(backend gofakes3.Backend, next http.Handler) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == "" || (r.Method != http.MethodPut && r.Method != http.MethodPost) {
			next.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") && r.Header.Get("If-None-Match") == "*" {
			bucket, key, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
			if ok {
				if _, err := backend.HeadObject(bucket, key); err == nil {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(http.StatusPreconditionFailed)
					_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` +
						`<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message>` +
						`<Condition>If-None-Match</Condition></Error>`))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
