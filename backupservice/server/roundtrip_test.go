package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// TestRoundTripEveryEndpoint reads every endpoint while the chain keeps committing,
// and verifies what it gets against signed ledger infos walked from the waypoint.
func TestRoundTripEveryEndpoint(t *testing.T) {
	ctx := context.Background()
	tc := newTestChain(t, devnet.Config{EpochLength: 200, BlockSize: 25, GenesisAccounts: 60, LargeValueEvery: 40, LargeValueSize: 3000}, 1000)
	ts, _, c := serve(t, tc.db, backupservice.ClientOptions{})
	stop := tc.commitInBackground(t)

	st, err := c.DBState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.CommittedVersion == nil || *st.CommittedVersion < 1000 || st.NextVersion != *st.CommittedVersion+1 {
		t.Fatalf("db state %+v", st)
	}

	// Epoch history from the waypoint, through the epoch-ending stream.
	ended := st.Epoch // epochs before the latest one have ended
	les, err := c.EpochEndingLedgerInfos(ctx, 0, ended)
	if err != nil {
		t.Fatal(err)
	}
	var hist *ledger.EpochHistory
	for les.Next() {
		li, err := les.LedgerInfo()
		if err != nil {
			t.Fatal(err)
		}
		if les.Epoch() == 0 {
			hist, err = ledger.NewEpochHistory(tc.wp, &li.LedgerInfo)
		} else {
			err = hist.Append(&li)
		}
		if err != nil {
			t.Fatalf("epoch %d: %v", les.Epoch(), err)
		}
	}
	if err := les.Err(); err != nil {
		t.Fatal(err)
	}
	les.Close()
	if hist == nil || hist.LatestEpoch() < 5 {
		t.Fatalf("epoch history too short")
	}
	latest, err := st.LedgerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if err := hist.Verify(&latest); err != nil {
		t.Fatalf("latest ledger info: %v", err)
	}

	for _, v := range []uint64{0, 450, *st.CommittedVersion} {
		// The state root, proven against a signed ledger info.
		srp, err := c.StateRootProof(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Verify(&srp.LedgerInfo); err != nil {
			t.Fatalf("version %d: state root proof ledger info: %v", v, err)
		}
		root, err := srp.Verify(v, &srp.LedgerInfo.LedgerInfo)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.StateItemCount(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		// The whole state in chunks, each verified with its range proof.
		ver := smt.NewChunkVerifier(root)
		const chunk = 37
		var got uint64
		for start := uint64(0); start < n; start += chunk {
			ss, err := c.StateSnapshotChunk(ctx, v, start, chunk)
			if err != nil {
				t.Fatal(err)
			}
			var leaves []smt.Leaf
			for ss.Next() {
				if ss.Index() != start+uint64(len(leaves)) {
					t.Fatalf("index %d", ss.Index())
				}
				leaves = append(leaves, smt.Leaf{KeyHash: smt.KeyHash(ss.Key()), ValueHash: smt.ValueHash(ss.Value())})
				want, err := tc.db.StateValue(ctx, v, ss.Key())
				if err != nil || !bytes.Equal(want, ss.Value()) {
					t.Fatalf("version %d key %q: value differs from the store (%v)", v, ss.Key(), err)
				}
			}
			if err := ss.Err(); err != nil {
				t.Fatal(err)
			}
			ss.Close()
			rp, err := c.StateRangeProof(ctx, v, leaves[len(leaves)-1].KeyHash)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ver.AddChunk(leaves, rp); err != nil {
				t.Fatalf("version %d chunk at %d: %v", v, start, err)
			}
			got += uint64(len(leaves))
		}
		if _, _, err := ver.Finish(); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if got != n {
			t.Fatalf("version %d: %d items streamed, count says %d", v, got, n)
		}
	}

	// Transactions with their range proofs.
	for _, r := range [][2]uint64{{0, 0}, {1, 199}, {150, 420}, {*st.CommittedVersion - 30, *st.CommittedVersion}} {
		ts, err := c.Transactions(ctx, r[0], r[1]-r[0]+1)
		if err != nil {
			t.Fatal(err)
		}
		var hashes []ledger.Hash
		for ts.Next() {
			if ts.Version() != r[0]+uint64(len(hashes)) {
				t.Fatalf("version %d", ts.Version())
			}
			txn, err := ts.Transaction()
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, txn.Info.Hash())
		}
		if err := ts.Err(); err != nil {
			t.Fatal(err)
		}
		ts.Close()
		p, err := c.TransactionRangeProof(ctx, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Verify(&p.LedgerInfo); err != nil {
			t.Fatal(err)
		}
		li := p.LedgerInfo.LedgerInfo
		if li.Version < r[1] {
			t.Fatalf("proof against version %d for a range ending at %d", li.Version, r[1])
		}
		if err := accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, r[0], hashes, p.Proof); err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		hashes[0][0] ^= 1
		if err := accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, r[0], hashes, p.Proof); err == nil {
			t.Fatalf("range %v: a tampered info verified", r)
		}
	}
	stop()

	// Errors: ranges beyond the committed data, bad parameters, other methods.
	st, err = c.DBState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := st.NextVersion
	beyond := []func() error{
		func() error { _, err := c.StateItemCount(ctx, next); return err },
		func() error { _, err := c.StateSnapshotChunk(ctx, next, 0, 10); return err },
		func() error { _, err := c.StateSnapshotChunk(ctx, 5, 1<<40, 10); return err },
		func() error { _, err := c.StateRootProof(ctx, next); return err },
		func() error { _, err := c.StateRangeProof(ctx, next, ledger.Hash{}); return err },
		func() error { _, err := c.Transactions(ctx, next-5, 6); return err },
		func() error { _, err := c.TransactionRangeProof(ctx, 0, next); return err },
		func() error { _, err := c.EpochEndingLedgerInfos(ctx, 0, st.Epoch+2); return err },
	}
	for i, f := range beyond {
		if err := f(); !errors.Is(err, backupservice.ErrNotFound) {
			t.Errorf("beyond committed data %d: %v, want a 404", i, err)
		} else {
			t.Logf("beyond committed data: %v", err)
		}
	}
	bad := []func() error{
		func() error { _, err := c.StateSnapshotChunk(ctx, 5, 0, 0); return err },
		func() error { _, err := c.Transactions(ctx, 5, 0); return err },
		func() error { _, err := c.TransactionRangeProof(ctx, 9, 8); return err },
		func() error { _, err := c.EpochEndingLedgerInfos(ctx, 3, 3); return err },
		func() error { return get(ctx, ts.URL+"/transactions/abc/1") },
		func() error { return get(ctx, ts.URL+"/state_range_proof/1/zz") },
		func() error { return get(ctx, ts.URL+"/state_item_count/-1") },
	}
	for i, f := range bad {
		if err := f(); httpStatus(err) != http.StatusBadRequest {
			t.Errorf("bad parameters %d: %v, want a 400", i, err)
		}
	}
	resp, err := http.Post(ts.URL+"/db_state", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}
	http.DefaultClient.CloseIdleConnections()
}

// get sends a GET of a raw URL (parameters the client cannot send) and returns a
// non-200 answer as a *backupservice.HTTPError, like the client does.
func get(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, backupservice.MaxErrorMessageSize))
	if resp.StatusCode != http.StatusOK {
		return &backupservice.HTTPError{Endpoint: u, StatusCode: resp.StatusCode, Message: string(bytes.TrimSpace(b))}
	}
	return nil
}
