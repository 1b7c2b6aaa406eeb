package killcampaign

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
)

// The orphan check finds a grandchild that outlives its killed parent, and reports
// the exit by signal.
func TestSurvivorsFindsOrphans(t *testing.T) {
	marker := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c, err := startChild("/bin/sh", []string{"-c", "sleep 30 & echo started >&2; wait"}, []string{MarkerEnv + "=" + marker},
		filepath.Join(t.TempDir(), "sh.log"), func(line []byte) bool { return string(line) == "started" })
	if err != nil {
		t.Fatal(err)
	}
	// Whatever fails below, neither the shell, its sleep nor the Wait goroutine
	// outlives the test.
	t.Cleanup(func() {
		left, _ := proc.ProcessesWithEnv(MarkerEnv, marker)
		killSurvivors(left)
		c.cmd.Process.Kill()
		<-c.done
	})
	for deadline := time.Now().Add(10 * time.Second); len(c.kept()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the shell did not start its sleep: %s", c.tail(600))
		}
	}
	if err := c.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The sleep holds the stderr pipe open: the copier ends only once it is gone.
	left := survivors(marker, 200*time.Millisecond)
	if len(left) != 1 {
		t.Fatalf("survivors %v, want the orphaned sleep", left)
	}
	killSurvivors(left)
	code, sig, err := c.waitExit(10 * time.Second)
	if err != nil || sig != syscall.SIGKILL || code != -1 {
		t.Fatalf("exit %d, signal %v, %v; want killed", code, sig, err)
	}
	if left := survivors(marker, 2*time.Second); len(left) != 0 {
		t.Fatalf("survivors after the kill: %v", left)
	}
}

func TestLogField(t *testing.T) {
	line := []byte(`{"msg":"backup completed","chunks_reused":7,"backup_service":"127.0.0.1:1"}`)
	if logField(line, "msg") != "backup completed" || logField(line, "backup_service") != "127.0.0.1:1" || logField(line, "chunks_reused") != "7" {
		t.Fatal("fields not read")
	}
	if reusedChunks(line) != 7 || !watchCoordinator(line) || watchCoordinator([]byte(`{"msg":"stopped"}`)) {
		t.Fatal("reuse count or watch wrong")
	}
}

// TestConfigDefaults checks that zero means the default and a negative value an explicit
// zero, for the waits and the SIGKILL share, and that a share above 1 is refused.
func TestConfigDefaults(t *testing.T) {
	base := func() Config { return Config{Binary: "x", Runs: []KindRun{{Kind: Local, Kills: 1}}} }
	c := base()
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.MinWait != 200*time.Millisecond || c.MaxWait != 3*time.Second || c.SIGKILLFraction != 0.6 {
		t.Fatalf("defaults: min %v max %v sigkill %v", c.MinWait, c.MaxWait, c.SIGKILLFraction)
	}
	c = base()
	c.MinWait, c.MaxWait, c.SIGKILLFraction = -1, -1, -1
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.MinWait != 0 || c.MaxWait != 0 || c.SIGKILLFraction != 0 {
		t.Fatalf("explicit zeros: min %v max %v sigkill %v", c.MinWait, c.MaxWait, c.SIGKILLFraction)
	}
	c = base()
	c.SIGKILLFraction = 1.5
	if err := c.defaults(); err == nil {
		t.Fatal("a SIGKILL share of 1.5 was accepted")
	}
	c = base()
	c.MinWait, c.MaxWait = 2*time.Second, time.Second
	if err := c.defaults(); err == nil {
		t.Fatal("a max wait below the min wait was accepted")
	}
}
