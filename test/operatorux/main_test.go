// Package operatorux_test runs the ledgervault binary the way a new operator does
// and checks what issue 15 found wrong: readers that created stores, a restore
// that wrote before checking its trust, untruthful interrupt messages, and a
// one-off backup that created its folder before reaching the node.
package operatorux_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "lv-operatorux-test") }
