package progresstest

import (
	"slices"
	"testing"
)

func TestScreen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"abc\n", []string{"abc"}},
		{"\rbar 1\x1b[K\rbar 22\x1b[K", []string{"bar 22"}},
		{"\rlong bar\x1b[K\rshort", []string{"shortbar"}},
		{"\rbar\x1b[K{\"msg\"}\n", []string{"bar{\"msg\"}"}},
		{"\rbar\x1b[K\r\x1b[Klog\n\rbar\x1b[K\n", []string{"log", "bar"}},
	} {
		if got := Screen(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Screen(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
