package txn

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// realChunk is the first chunk of the corpus, decompressed, with its records split.
type realChunk struct {
	c       Chunk
	data    []byte
	proof   []byte
	offsets []int // record i is data[offsets[i]+4 : offsets[i+1]]
}

var (
	realOnce   sync.Once
	realLoaded *realChunk
)

// loadRealChunk returns the first chunk, loaded once for all tests (they only read it).
func loadRealChunk(t testing.TB) *realChunk {
	t.Helper()
	root := corpusPath(t)
	realOnce.Do(func() { realLoaded = readRealChunk(t, root) })
	if realLoaded == nil {
		t.Fatal("corpus chunk could not be loaded")
	}
	return realLoaded
}

func readRealChunk(t testing.TB, root string) *realChunk {
	c := corpusChunks(t)[0]
	rc := &realChunk{c: c, data: gunzip(t, filepath.Join(root, c.Name)), proof: gunzip(t, filepath.Join(root, c.ProofName))}
	for off := 0; off < len(rc.data); {
		rc.offsets = append(rc.offsets, off)
		off += 4 + int(binary.BigEndian.Uint32(rc.data[off:]))
	}
	rc.offsets = append(rc.offsets, len(rc.data))
	return rc
}

// record returns the bytes of the record at version v (without its frame).
func (rc *realChunk) record(v uint64) []byte {
	i := v - rc.c.FirstVersion
	return rc.data[rc.offsets[i]+4 : rc.offsets[i+1]]
}

func (rc *realChunk) verify(data, proof []byte) error {
	_, err := VerifyChunk(context.Background(), rc.c, bytes.NewReader(data), proof, Options{LedgerInfo: acceptAll})
	return err
}

// wantErr requires err to name every one of names.
func wantErr(t *testing.T, err error, target error, names ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified; want an error naming %q", names)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v is not %v", err, target)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
}

// userVersion returns the first version of the chunk holding a user transaction.
func (rc *realChunk) userVersion(t *testing.T) uint64 {
	for v := rc.c.FirstVersion; v <= rc.c.LastVersion; v++ {
		rec, err := DecodeRecord(rc.record(v))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Transaction.Kind == KindUser {
			return v
		}
	}
	t.Fatal("no user transaction")
	return 0
}

func TestTamperedTransactionByte(t *testing.T) {
	rc := loadRealChunk(t)
	v := rc.userVersion(t)
	rec, err := DecodeRecord(rc.record(v))
	if err != nil {
		t.Fatal(err)
	}
	// One byte of the signature: the record still decodes, only its hash changes.
	sig := rec.Transaction.User.Authenticator.Sender.Signature
	data := bytes.Clone(rc.data)
	at := rc.offsets[v-rc.c.FirstVersion] + 4 + bytes.Index(rc.record(v), sig) + 10
	data[at] ^= 0x01
	err = rc.verify(data, rc.proof)
	wantErr(t, err, ErrMismatch, rc.c.Name, fmt.Sprintf("version %d", v), "transaction_hash")

	// The same through a rebuilt gzip layer, as a chunk file is read: the gzip stream is
	// intact, so only the content check can catch it.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	zw.Close()
	zr, err := gzip.NewReader(&gz)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyChunk(context.Background(), rc.c, zr, rc.proof, Options{LedgerInfo: acceptAll})
	wantErr(t, err, ErrMismatch, rc.c.Name, fmt.Sprintf("version %d", v), "transaction_hash")

	// One byte of a block's timestamp (a BlockMetadata transaction).
	bm := v - 1
	if r, _ := DecodeRecord(rc.record(bm)); r.Transaction.Kind != KindBlockMetadata {
		t.Fatalf("version %d is %v", bm, r.Transaction.Kind)
	}
	data = bytes.Clone(rc.data)
	data[rc.offsets[bm-rc.c.FirstVersion]+4+1+32+8+8+32+1] ^= 0x80 // epoch..proposer, bitvec length
	err = rc.verify(data, rc.proof)
	wantErr(t, err, nil, rc.c.Name, fmt.Sprintf("version %d", bm))
}

func TestTamperedInfoFailsRangeProof(t *testing.T) {
	rc := loadRealChunk(t)
	// gas_used of the last info: the record is self-consistent (its hashes do not
	// cover gas), so only the accumulator proof can catch it.
	v := rc.c.LastVersion
	rec, err := DecodeRecord(rc.record(v))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(rc.data)
	infoAt := rc.offsets[v-rc.c.FirstVersion] + 4 + len(rec.txnBytes) + 1 // after the V0 tag
	data[infoAt] ^= 0x01
	err = rc.verify(data, rc.proof)
	wantErr(t, err, aptos.ErrProof, rc.c.ProofName, fmt.Sprintf("versions %d-%d", rc.c.FirstVersion, rc.c.LastVersion))
}

func TestTruncatedRangeProof(t *testing.T) {
	rc := loadRealChunk(t)
	for _, n := range []int{0, 1, 33, len(rc.proof) / 2, len(rc.proof) - 1} {
		err := rc.verify(rc.data, rc.proof[:n])
		wantErr(t, err, bcs.ErrShort, rc.c.ProofName)
	}
	// A proof missing a sibling but otherwise well-formed: drop the last right sibling
	// and fix its count.
	p, err := DecodeChunkProof(rc.proof)
	if err != nil {
		t.Fatal(err)
	}
	nl, nr := len(p.Range.LeftSiblings), len(p.Range.RightSiblings)
	short := append([]byte(nil), rc.proof[:1+32*nl]...)
	short = append(short, byte(nr-1))
	short = append(short, rc.proof[1+32*nl+1:1+32*nl+1+32*(nr-1)]...)
	short = append(short, rc.proof[1+32*nl+1+32*nr:]...)
	err = rc.verify(rc.data, short)
	wantErr(t, err, aptos.ErrProof, rc.c.ProofName)
}

func TestExtraMissingAndSwappedRecords(t *testing.T) {
	rc := loadRealChunk(t)
	last := rc.data[rc.offsets[len(rc.offsets)-2]:]
	err := rc.verify(append(bytes.Clone(rc.data), last...), rc.proof)
	wantErr(t, err, ErrMismatch, rc.c.Name, fmt.Sprintf("version %d", rc.c.LastVersion+1))

	err = rc.verify(rc.data[:rc.offsets[len(rc.offsets)-2]], rc.proof)
	wantErr(t, err, ErrMismatch, rc.c.Name, fmt.Sprintf("version %d", rc.c.LastVersion))

	err = rc.verify(rc.data[:len(rc.data)-3], rc.proof)
	wantErr(t, err, ErrTruncated, rc.c.Name, fmt.Sprintf("version %d", rc.c.LastVersion))

	// Swap the records of two adjacent versions: each is self-consistent, the order is not.
	i := 100
	a := rc.data[rc.offsets[i]:rc.offsets[i+1]]
	b := rc.data[rc.offsets[i+1]:rc.offsets[i+2]]
	swapped := append(append(append(bytes.Clone(rc.data[:rc.offsets[i]]), b...), a...), rc.data[rc.offsets[i+2]:]...)
	err = rc.verify(swapped, rc.proof)
	wantErr(t, err, aptos.ErrProof, rc.c.ProofName)
}

func TestRecordThatDoesNotParse(t *testing.T) {
	rc := loadRealChunk(t)
	v := rc.c.FirstVersion + 7
	at := rc.offsets[v-rc.c.FirstVersion] + 4
	for name, mutate := range map[string]func([]byte) []byte{
		"unknown transaction variant": func(d []byte) []byte { d[at] = 9; return d },
		"trailing byte": func(d []byte) []byte {
			n := binary.BigEndian.Uint32(d[at-4:])
			binary.BigEndian.PutUint32(d[at-4:], n+1)
			return append(append(bytes.Clone(d[:at+int(n)]), 0), d[at+int(n):]...)
		},
		"short record": func(d []byte) []byte {
			n := binary.BigEndian.Uint32(d[at-4:])
			binary.BigEndian.PutUint32(d[at-4:], n-1)
			return append(bytes.Clone(d[:at+int(n)-1]), d[at+int(n):]...)
		},
		"oversized length": func(d []byte) []byte { binary.BigEndian.PutUint32(d[at-4:], 0xfffffff0); return d },
	} {
		t.Run(name, func(t *testing.T) {
			err := rc.verify(mutate(bytes.Clone(rc.data)), rc.proof)
			wantErr(t, err, nil, rc.c.Name, fmt.Sprintf("version %d", v))
		})
	}
}

func TestLedgerInfoVerifierDecides(t *testing.T) {
	rc := loadRealChunk(t)
	bad := errors.New("not signed by a quorum")
	_, err := VerifyChunk(context.Background(), rc.c, bytes.NewReader(rc.data), rc.proof,
		Options{LedgerInfo: LedgerInfoVerifierFunc(func(context.Context, *aptos.LedgerInfoWithSignatures) error { return bad })})
	wantErr(t, err, bad, rc.c.ProofName)
	_, err = VerifyChunk(context.Background(), rc.c, bytes.NewReader(rc.data), rc.proof, Options{})
	wantErr(t, err, nil, rc.c.Name, "verifier")
}

func TestWrongDomainAndRange(t *testing.T) {
	rc := loadRealChunk(t)
	_, err := VerifyChunk(context.Background(), rc.c, bytes.NewReader(rc.data), rc.proof, Options{LedgerInfo: acceptAll, Domain: aptos.AptosDomain})
	wantErr(t, err, ErrMismatch, rc.c.Name, fmt.Sprintf("version %d", rc.c.FirstVersion))
	st, err := VerifyChunk(context.Background(), rc.c, bytes.NewReader(rc.data), rc.proof, Options{LedgerInfo: acceptAll, Domain: aptos.DiemDomain, Workers: 1, BatchRecords: 7})
	if err != nil || st.Transactions != 20000 {
		t.Fatalf("DiemDomain, 1 worker, batches of 7: %+v, %v", st, err)
	}
	// Without a configured domain the first record decides it; a first record that
	// hashes to its transaction_hash in no known domain is an error at its version.
	bad := bytes.Clone(rc.data)
	bad[rc.offsets[0]+4+1+5] ^= 0x01 // inside the first BlockMetadata's block id
	_, err = VerifyChunk(context.Background(), rc.c, bytes.NewReader(bad), rc.proof, Options{LedgerInfo: acceptAll})
	wantErr(t, err, ErrMismatch, rc.c.Name, fmt.Sprintf("version %d", rc.c.FirstVersion), "no known hash domain")

	// The same records claimed one version later: the proof puts them elsewhere.
	shifted := rc.c
	shifted.FirstVersion++
	shifted.LastVersion++
	_, err = VerifyChunk(context.Background(), shifted, bytes.NewReader(rc.data), rc.proof, Options{LedgerInfo: acceptAll})
	wantErr(t, err, aptos.ErrProof, rc.c.ProofName)
}

func TestCancelledContext(t *testing.T) {
	rc := loadRealChunk(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := VerifyChunk(ctx, rc.c, bytes.NewReader(rc.data), rc.proof, Options{LedgerInfo: acceptAll})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestEveryByteIsCovered flips, one at a time, every byte of real records of each kind
// (and of a synthetic record with every part populated): each flip must make the record
// fail to decode, disagree with its own info, or change the info's hash (which the
// range proof then catches). No byte of a record escapes verification.
func TestEveryByteIsCovered(t *testing.T) {
	rc := loadRealChunk(t)
	s := seedsOf(aptos.DiemDomain)
	var samples [][]byte
	seen := map[TransactionKind]bool{}
	for v := rc.c.FirstVersion; v <= rc.c.LastVersion && len(seen) < 3; v++ {
		rec, err := DecodeRecord(rc.record(v))
		if err != nil {
			t.Fatal(err)
		}
		if !seen[rec.Transaction.Kind] {
			seen[rec.Transaction.Kind] = true
			samples = append(samples, rc.record(v))
		}
	}
	// A synthetic record whose info is made consistent with it, so that it verifies.
	syn := syntheticRecords()["script, multi-ed25519, move abort in script, all write ops"]
	dec, err := DecodeRecord(encodeRecord(syn))
	if err != nil {
		t.Fatal(err)
	}
	var scratch []HashValue
	h := newHasher().hashes(s, dec, &scratch)
	syn.Info.TransactionHash, syn.Info.EventRootHash, syn.Info.StateChangeHash = h.Transaction, h.EventRoot, h.WriteSet
	samples = append(samples, encodeRecord(syn))

	x := newHasher()
	for si, b := range samples {
		rec, err := DecodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		h := x.hashes(s, rec, &scratch)
		if err := rec.check(&h); err != nil {
			t.Fatalf("sample %d does not verify: %v", si, err)
		}
		leaf := h.Info
		for i := range b {
			bad := bytes.Clone(b)
			bad[i] ^= 0x01
			r2, err := DecodeRecord(bad)
			if err != nil {
				continue
			}
			h2 := x.hashes(s, r2, &scratch)
			if r2.check(&h2) == nil && h2.Info == leaf {
				t.Fatalf("sample %d: flipping byte %d of %d goes unnoticed", si, i, len(b))
			}
		}
	}
}
