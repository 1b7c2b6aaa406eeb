package storage

import "errors"

// ErrConfig marks a store configuration that cannot work: a malformed storage URL,
// an unsupported scheme, unknown URL parameters, missing credentials, a command
// config that does not parse. Such an error is also permanent (errors.Is with
// ErrPermanent holds: a retry cannot fix it), but its message is only what is wrong
// with the configuration, without the "permanent storage failure" of Permanent:
// nothing failed in storage.
var ErrConfig = errors.New("bad storage configuration")

// ConfigError wraps err so that errors.Is(err, ErrConfig) and errors.Is(err,
// ErrPermanent) hold; its message is err's. It returns nil for nil.
func ConfigError(err error) error {
	if err == nil {
		return nil
	}
	return &configError{err}
}

// IsConfig reports whether err is a configuration error (see ErrConfig).
func IsConfig(err error) bool { return errors.Is(err, ErrConfig) }

type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

func (e *configError) Unwrap() error { return e.err }

// Is makes a configuration error match ErrConfig and ErrPermanent.
func (e *configError) Is(target error) bool { return target == ErrConfig || target == ErrPermanent }
