package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// The flag definitions below check a value when it is set, wherever it comes from:
// the command line (pflag names the flag in its error, and the command's flag error
// becomes a usage error, see Prepare) or the environment and configuration file
// (package config names the flag and the source). A command therefore never sees
// an out-of-range value.

// number is what the range-checked flags hold.
type number interface {
	~int | ~int64 | ~uint64 | ~float64
}

// rangeValue is a pflag.Value of a number within [lo, hi].
type rangeValue[T number] struct {
	p      *T
	lo, hi T
	typ    string
	parse  func(string) (T, error)
}

func (v *rangeValue[T]) String() string { return fmtNumber(*v.p) }

func (v *rangeValue[T]) Type() string { return v.typ }

func (v *rangeValue[T]) Set(s string) error {
	n, err := v.parse(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	if n < v.lo || n > v.hi {
		return errors.New(v.want())
	}
	*v.p = n
	return nil
}

// want describes the accepted range.
func (v *rangeValue[T]) want() string {
	switch {
	case v.hi == maxOf[T]():
		return "want at least " + fmtNumber(v.lo)
	default:
		return "want " + fmtNumber(v.lo) + " to " + fmtNumber(v.hi)
	}
}

func fmtNumber[T number](n T) string {
	if f, ok := any(n).(float64); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprint(n)
}

func maxOf[T number]() T {
	var z T
	switch any(z).(type) {
	case int:
		return T(math.MaxInt)
	case int64:
		return T(math.MaxInt64)
	case uint64:
		m := uint64(math.MaxUint64)
		return T(m)
	}
	return T(math.Inf(1))
}

func parseInt(s string) (int, error) {
	n, err := strconv.ParseInt(s, 0, strconv.IntSize)
	if err != nil {
		return 0, notA("an integer", err)
	}
	return int(n), nil
}

func parseInt64(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, notA("an integer", err)
	}
	return n, nil
}

func parseUint64(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, notA("a non-negative integer", err)
	}
	return n, nil
}

func parseFloat64(s string) (float64, error) {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(n) {
		return 0, notA("a number", err)
	}
	return n, nil
}

// notA turns a strconv error into "not an integer" (or "out of range").
func notA(what string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return errors.New("out of range")
	}
	return errors.New("not " + what)
}

func defineRange[T number](fs *pflag.FlagSet, p *T, name string, def, lo, hi T, typ string, parse func(string) (T, error), usage string) {
	*p = def
	fs.Var(&rangeValue[T]{p: p, lo: lo, hi: hi, typ: typ, parse: parse}, name, usage)
}

// IntVar defines an int flag whose value must be within [lo, hi].
func IntVar(fs *pflag.FlagSet, p *int, name string, def, lo, hi int, usage string) {
	defineRange(fs, p, name, def, lo, hi, "int", parseInt, usage)
}

// Int64Var defines an int64 flag whose value must be within [lo, hi].
func Int64Var(fs *pflag.FlagSet, p *int64, name string, def, lo, hi int64, usage string) {
	defineRange(fs, p, name, def, lo, hi, "int64", parseInt64, usage)
}

// Uint64Var defines a uint64 flag whose value must be within [lo, hi].
func Uint64Var(fs *pflag.FlagSet, p *uint64, name string, def, lo, hi uint64, usage string) {
	defineRange(fs, p, name, def, lo, hi, "uint64", parseUint64, usage)
}

// Float64Var defines a float64 flag whose value must be within [lo, hi] (not NaN).
func Float64Var(fs *pflag.FlagSet, p *float64, name string, def, lo, hi float64, usage string) {
	defineRange(fs, p, name, def, lo, hi, "float64", parseFloat64, usage)
}

// MaxInt, MaxInt64 and MaxUint64 are the upper bounds of flags without one.
const (
	MaxInt    = math.MaxInt
	MaxInt64  = math.MaxInt64
	MaxUint64 = math.MaxUint64
)

// Positive and NonNegative are the usual lower bounds of DurationVar.
const (
	Positive    = time.Nanosecond
	NonNegative = time.Duration(0)
)

// durationValue is a pflag.Value of a duration of at least min.
type durationValue struct {
	p   *time.Duration
	min time.Duration
}

func (v *durationValue) String() string { return v.p.String() }

func (v *durationValue) Type() string { return "duration" }

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. 30s, 5m or 1h30m)")
	}
	if d < v.min {
		switch v.min {
		case NonNegative:
			return errors.New("must not be negative")
		case Positive:
			return errors.New("must be positive")
		}
		return fmt.Errorf("want at least %v", v.min)
	}
	*v.p = d
	return nil
}

// DurationVar defines a duration flag whose value must be at least min (Positive,
// NonNegative or any other duration).
func DurationVar(fs *pflag.FlagSet, p *time.Duration, name string, def, min time.Duration, usage string) {
	*p = def
	fs.Var(&durationValue{p: p, min: min}, name, usage)
	if def == 0 {
		// pflag prints "(default 0s)" for a Value it does not know; a zero
		// default is left out of the help as for its own duration flags (the
		// usage says what 0 means).
		fs.Lookup(name).DefValue = "0"
	}
}

// enumValue is a pflag.Value of one of a fixed set of words.
type enumValue struct {
	p       *string
	allowed []string
}

func (v *enumValue) String() string { return *v.p }

func (v *enumValue) Type() string { return "string" }

func (v *enumValue) Set(s string) error {
	for _, a := range v.allowed {
		if strings.EqualFold(strings.TrimSpace(s), a) {
			*v.p = a
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(v.allowed))
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// EnumVar defines a string flag whose value must be one of allowed (compared
// without case; the flag then holds the spelling of allowed).
func EnumVar(fs *pflag.FlagSet, p *string, name, def string, allowed []string, usage string) {
	*p = def
	fs.Var(&enumValue{p: p, allowed: allowed}, name, usage)
}

// IsValidated reports whether fl was defined by one of this file's functions, so
// that its value is checked whenever it is set.
func IsValidated(fl *pflag.Flag) bool {
	switch fl.Value.(type) {
	case *rangeValue[int], *rangeValue[int64], *rangeValue[uint64], *rangeValue[float64], *durationValue, *enumValue:
		return true
	}
	return false
}
