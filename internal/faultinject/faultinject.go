// Package faultinject makes backup storage misbehave on purpose, for the fault
// campaign: a wrapper of a command-adapter configuration (Shell) whose commands
// fail at a given rate, and a reverse proxy in front of an S3 endpoint (S3Proxy)
// whose requests fail at a given rate. Both inject the same kinds of failure
// (refuse, cut, commit then fail, half read, failed listing), choose them
// deterministically from a seed and the number of the call, and count every call
// and every fault by kind.
package faultinject

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is a kind of injected failure.
type Kind string

// The kinds of failure.
const (
	// Refuse fails a call before it does anything (a non-zero exit; HTTP 503).
	Refuse Kind = "refuse"
	// Cut ends an upload partway through its data: the command is killed after
	// part of stdin, leaving its temporary file; the connection is closed after part
	// of the request body.
	Cut Kind = "cut"
	// CommitThenFail does the call, then reports failure (exit 1 after the command
	// succeeded; HTTP 500 after the request was served).
	CommitThenFail Kind = "commit_then_fail"
	// HalfRead sends the first half of a file, then fails (exit 1; the connection
	// closed mid-body).
	HalfRead Kind = "half_read"
	// ListFail fails a listing after the first half of it.
	ListFail Kind = "list_fail"
)

// Kinds lists every kind, in the order tables print them.
var Kinds = []Kind{Refuse, Cut, CommitThenFail, HalfRead, ListFail}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("fault kind %q: want one of %s", s, kindList(Kinds))
}

func kindList(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Counts is what an injector saw: calls by operation and faults injected by kind.
type Counts struct {
	// Calls counts the calls by operation (command name or S3 operation), faults
	// on or off.
	Calls map[string]int
	// Injected counts the faults injected, by kind.
	Injected map[Kind]int
	// InjectedByOp counts the faults injected, by operation and kind.
	InjectedByOp map[string]map[Kind]int
}

func newCounts() Counts {
	return Counts{Calls: map[string]int{}, Injected: map[Kind]int{}, InjectedByOp: map[string]map[Kind]int{}}
}

func (c Counts) inject(op string, k Kind) {
	c.Injected[k]++
	if c.InjectedByOp[op] == nil {
		c.InjectedByOp[op] = map[Kind]int{}
	}
	c.InjectedByOp[op][k]++
}

// TotalCalls returns the number of calls of every operation.
func (c Counts) TotalCalls() int {
	n := 0
	for _, v := range c.Calls {
		n += v
	}
	return n
}

// TotalInjected returns the number of faults of every kind.
func (c Counts) TotalInjected() int {
	n := 0
	for _, v := range c.Injected {
		n += v
	}
	return n
}

// Ops returns the operations called, sorted.
func (c Counts) Ops() []string {
	ops := make([]string, 0, len(c.Calls))
	for op := range c.Calls {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// ppm is a rate in parts per million, the unit both injectors decide in.
func ppm(rate float64) (int, error) {
	if rate < 0 || rate > 1 || rate != rate {
		return 0, fmt.Errorf("fault rate %v: want a fraction from 0 to 1", rate)
	}
	return int(rate*1e6 + 0.5), nil
}

// pick decides one call: h is the call's hash, rate the fault rate in ppm,
// cand the kinds allowed for the call. It returns the kind to inject, or "" for
// none. The shell wrapper's bash decides with the same arithmetic.
func pick(h uint64, rate int, cand []Kind) Kind {
	if len(cand) == 0 || h%1_000_000 >= uint64(rate) {
		return ""
	}
	return cand[(h/1_000_000)%uint64(len(cand))]
}

// allowed returns the kinds of applicable also in enabled (all of applicable when
// enabled is empty), in applicable's order.
func allowed(applicable, enabled []Kind) []Kind {
	if len(enabled) == 0 {
		return applicable
	}
	var out []Kind
	for _, k := range applicable {
		for _, e := range enabled {
			if k == e {
				out = append(out, k)
				break
			}
		}
	}
	return out
}
