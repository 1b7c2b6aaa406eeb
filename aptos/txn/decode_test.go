package txn

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// TestRealRecordsRoundTrip decodes every record of the first real chunk and encodes it
// back byte for byte, and counts the variants the real chain uses.
func TestRealRecordsRoundTrip(t *testing.T) {
	rc := loadRealChunk(t)
	kinds := map[TransactionKind]int{}
	for v := rc.c.FirstVersion; v <= rc.c.LastVersion; v++ {
		b := rc.record(v)
		rec, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if got := encodeRecord(rec); !bytes.Equal(got, b) {
			t.Fatalf("version %d: re-encoding differs from the record", v)
		}
		kinds[rec.Transaction.Kind]++
	}
	// The chain's blocks: metadata, user transactions, checkpoints (no genesis here).
	if kinds[KindBlockMetadata] == 0 || kinds[KindUser] == 0 || kinds[KindStateCheckpoint] == 0 {
		t.Errorf("variants %v", kinds)
	}
}

func addr(b byte) Address {
	var a Address
	a[31] = b
	return a
}

func hv(b byte) HashValue {
	var h HashValue
	for i := range h {
		h[i] = b
	}
	return h
}

func coinType() TypeTag {
	return TypeTag{Kind: TypeStruct, Struct: &StructTag{Address: addr(1), Module: "coin", Name: "Coin",
		TypeArgs: []TypeTag{{Kind: TypeStruct, Struct: &StructTag{Address: addr(1), Module: "aptos_coin", Name: "AptosCoin"}}}}}
}

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func ed25519Auth() AccountAuthenticator {
	return AccountAuthenticator{Kind: AccountEd25519, PublicKey: rep(7, 32), Signature: rep(8, 64)}
}

// multiEd25519Auth has 3 keys, threshold 2, and 2 signatures (bits 0 and 2).
func multiEd25519Auth() AccountAuthenticator {
	return AccountAuthenticator{Kind: AccountMultiEd25519,
		PublicKey: append(rep(7, 96), 2),
		Signature: append(rep(8, 128), 0xa0, 0, 0, 0)}
}

func baseInfo() TransactionInfo {
	cp := hv(4)
	return TransactionInfo{GasUsed: 12, TransactionHash: hv(1), EventRootHash: hv(2), StateChangeHash: hv(3), StateCheckpointHash: &cp}
}

func entryFn() *EntryFunction {
	return &EntryFunction{Module: ModuleID{Address: addr(1), Name: "coin"}, Function: "transfer",
		TyArgs: []TypeTag{coinType()}, Args: [][]byte{rep(9, 32), {1, 0, 0, 0, 0, 0, 0, 0}}}
}

func writeSetAll() WriteSet {
	// Keys in strictly increasing BCS order: AccessPath (0) < TableItem (1) < Raw (2).
	return WriteSet{Entries: []WriteSetEntry{
		{Key: StateKey{Kind: StateKeyAccessPath, Address: addr(1), Path: []byte{1, 2}}, Op: WriteOp{Kind: OpCreation, Data: []byte{1}}},
		{Key: StateKey{Kind: StateKeyAccessPath, Address: addr(1), Path: []byte{1, 3}}, Op: WriteOp{Kind: OpDeletion}},
		{Key: StateKey{Kind: StateKeyAccessPath, Address: addr(2), Path: []byte{0}}, Op: WriteOp{Kind: OpModification, Data: []byte{2}}},
		{Key: StateKey{Kind: StateKeyTableItem, Address: addr(3), Path: []byte("k")}, Op: WriteOp{Kind: OpCreationWithMetadata, Data: []byte{3}, Metadata: &StateValueMetadata{Deposit: 5, CreationTimeUsecs: 6}}},
		{Key: StateKey{Kind: StateKeyTableItem, Address: addr(3), Path: []byte("l")}, Op: WriteOp{Kind: OpModificationWithMetadata, Data: []byte{4}, Metadata: &StateValueMetadata{V1: true, Deposit: 5, BytesDeposit: 7, CreationTimeUsecs: 6}}},
		{Key: StateKey{Kind: StateKeyRaw, Path: []byte("raw")}, Op: WriteOp{Kind: OpDeletionWithMetadata, Metadata: &StateValueMetadata{Deposit: 1, CreationTimeUsecs: 2}}},
	}}
}

// syntheticRecords are records of variants the real chunks do not use, built from the
// aptos-core type definitions of 2023.
func syntheticRecords() map[string]*Record {
	args := []TransactionArgument{
		{Kind: ArgU8, Value: []byte{1}}, {Kind: ArgU64, Value: rep(2, 8)}, {Kind: ArgU128, Value: rep(3, 16)},
		{Kind: ArgAddress, Value: rep(4, 32)}, {Kind: ArgU8Vector, Value: []byte("vec")}, {Kind: ArgBool, Value: []byte{1}},
		{Kind: ArgU16, Value: rep(5, 2)}, {Kind: ArgU32, Value: rep(6, 4)}, {Kind: ArgU256, Value: rep(7, 32)},
	}
	nested := TypeTag{Kind: TypeVector, Elem: &TypeTag{Kind: TypeVector, Elem: &TypeTag{Kind: TypeU256}}}
	allPrims := []TypeTag{{Kind: TypeBool}, {Kind: TypeU8}, {Kind: TypeU64}, {Kind: TypeU128}, {Kind: TypeAddress},
		{Kind: TypeSigner}, nested, coinType(), {Kind: TypeU16}, {Kind: TypeU32}, {Kind: TypeU256}}
	code := uint64(4016)
	user := func(p TransactionPayload, a TransactionAuthenticator) Transaction {
		return Transaction{Kind: KindUser, User: &SignedTransaction{
			Raw:           RawTransaction{Sender: addr(0xaa), SequenceNumber: 3, Payload: p, MaxGasAmount: 1000, GasUnitPrice: 100, ExpirationTimestampSecs: 1700000000, ChainID: 1},
			Authenticator: a}}
	}
	events := []ContractEvent{
		{Kind: EventV0, Key: EventKey{CreationNumber: 2, AccountAddress: addr(5)}, SequenceNumber: 9, TypeTag: coinType(), Data: []byte{1, 2}},
		{Kind: EventV1, TypeTag: TypeTag{Kind: TypeU64}, Data: rep(1, 8)},
	}
	info := func(s ExecutionStatus) TransactionInfo { i := baseInfo(); i.Status = s; return i }
	cem := hv(6)
	scriptInfo := info(ExecutionStatus{Kind: StatusMoveAbort, Location: AbortLocation{Script: true}, Code: 7})
	scriptInfo.StateCemeteryHash = &cem
	return map[string]*Record{
		"script, multi-ed25519, move abort in script, all write ops": {
			Transaction: user(TransactionPayload{Kind: PayloadScript, Script: &Script{Code: []byte{0xa1, 0x1c}, TyArgs: allPrims, Args: args}},
				TransactionAuthenticator{Kind: AuthMultiEd25519, Sender: multiEd25519Auth()}),
			Info:     scriptInfo,
			Events:   events,
			WriteSet: writeSetAll(),
		},
		"module bundle, fee payer, execution failure": {
			Transaction: user(TransactionPayload{Kind: PayloadModuleBundle, Modules: [][]byte{{1, 2, 3}, {4}}},
				TransactionAuthenticator{Kind: AuthFeePayer, Sender: ed25519Auth(),
					SecondarySignerAddresses: []Address{addr(1), addr(2)},
					SecondarySigners:         []AccountAuthenticator{ed25519Auth(), multiEd25519Auth()},
					FeePayerAddress:          addr(3), FeePayerSigner: &AccountAuthenticator{Kind: AccountEd25519, PublicKey: rep(1, 32), Signature: rep(2, 64)}}),
			Info: info(ExecutionStatus{Kind: StatusExecutionFailure, Location: AbortLocation{Module: ModuleID{Address: addr(1), Name: "coin"}}, Function: 3, CodeOffset: 17}),
		},
		"multisig with payload, multi-agent, miscellaneous error": {
			Transaction: user(TransactionPayload{Kind: PayloadMultisig, Multisig: &Multisig{MultisigAddress: addr(4), EntryFunction: entryFn()}},
				TransactionAuthenticator{Kind: AuthMultiAgent, Sender: multiEd25519Auth(), SecondarySignerAddresses: []Address{addr(1)}, SecondarySigners: []AccountAuthenticator{ed25519Auth()}}),
			Info: info(ExecutionStatus{Kind: StatusMiscellaneousError, StatusCode: &code}),
		},
		"multisig without payload, out of gas": {
			Transaction: user(TransactionPayload{Kind: PayloadMultisig, Multisig: &Multisig{MultisigAddress: addr(4)}},
				TransactionAuthenticator{Kind: AuthEd25519, Sender: ed25519Auth()}),
			Info: info(ExecutionStatus{Kind: StatusOutOfGas}),
		},
		"entry function, abort with info": {
			Transaction: user(TransactionPayload{Kind: PayloadEntryFunction, EntryFunction: entryFn()},
				TransactionAuthenticator{Kind: AuthEd25519, Sender: ed25519Auth()}),
			Info: info(ExecutionStatus{Kind: StatusMoveAbort, Location: AbortLocation{Module: ModuleID{Address: addr(1), Name: "coin"}}, Code: 65542,
				Info: &AbortInfo{ReasonName: "EINSUFFICIENT_BALANCE", Description: "Not enough coins to complete transaction"}}),
			Events: events[:1],
		},
		"genesis direct": {
			Transaction: Transaction{Kind: KindGenesis, Genesis: &WriteSetPayload{Kind: WriteSetDirect, WriteSet: writeSetAll(), Events: events}},
			Info:        info(ExecutionStatus{Kind: StatusSuccess}),
			WriteSet:    writeSetAll(),
		},
		"genesis script": {
			Transaction: Transaction{Kind: KindGenesis, Genesis: &WriteSetPayload{Kind: WriteSetScript, ExecuteAs: addr(1), Script: &Script{Code: []byte{1}}}},
			Info:        info(ExecutionStatus{Kind: StatusSuccess}),
		},
		"block metadata with failed proposers": {
			Transaction: Transaction{Kind: KindBlockMetadata, BlockMetadata: &BlockMetadata{ID: hv(9), Epoch: 2, Round: 3, Proposer: addr(7), PreviousBlockVotesBitvec: []byte{0xe0}, FailedProposerIndices: []uint32{1, 2}, TimestampUsecs: 5}},
			Info:        info(ExecutionStatus{Kind: StatusSuccess}),
		},
	}
}

func TestSyntheticVariantsRoundTrip(t *testing.T) {
	for name, r := range syntheticRecords() {
		t.Run(name, func(t *testing.T) {
			b := encodeRecord(r)
			got, err := DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if again := encodeRecord(got); !bytes.Equal(again, b) {
				t.Fatal("decoded record re-encodes differently")
			}
			if got.Transaction.Kind != r.Transaction.Kind || got.Info.Status.Kind != r.Info.Status.Kind || len(got.Events) != len(r.Events) {
				t.Fatalf("decoded %+v", got)
			}
			// Hashing works on every variant; the hashes cover exactly each part's bytes.
			h := got.Hash(aptos.AptosDomain)
			seed := aptos.AptosDomain.Seed("Transaction")
			if want := aptos.HashWithSeed(seed, got.txnBytes); h.Transaction != want || !bytes.HasPrefix(b, got.txnBytes) {
				t.Errorf("transaction hash %s, want %s", h.Transaction, want)
			}
			if len(got.Events) == 0 && h.EventRoot != aptos.AccumulatorPlaceholderHash {
				t.Errorf("empty event root %s", h.EventRoot)
			}
		})
	}
}

// mutate decodes the encoding of a base record changed by f and returns the error.
func decodeChanged(t *testing.T, r *Record, f func(*Record)) error {
	t.Helper()
	f(r)
	_, err := DecodeRecord(encodeRecord(r))
	return err
}

func TestDecodeRejects(t *testing.T) {
	base := func() *Record {
		return syntheticRecords()["script, multi-ed25519, move abort in script, all write ops"]
	}
	deep := func(n int) TypeTag {
		tag := TypeTag{Kind: TypeU8}
		for i := 0; i < n; i++ {
			inner := tag
			tag = TypeTag{Kind: TypeVector, Elem: &inner}
		}
		return tag
	}
	cases := map[string]struct {
		f    func(*Record)
		want error
		path string
	}{
		"unsorted write set": {func(r *Record) {
			e := r.WriteSet.Entries
			e[0], e[1] = e[1], e[0]
		}, ErrInvalid, "write_set"},
		"duplicate write set key": {func(r *Record) { r.WriteSet.Entries[1].Key = r.WriteSet.Entries[0].Key }, ErrInvalid, "write_set"},
		"identifier not UTF-8":    {func(r *Record) { r.Events[0].TypeTag.Struct.Name = "Co\xffin" }, bcs.ErrInvalid, "events[0]"},
		"type tag too deep":       {func(r *Record) { r.Events[1].TypeTag = deep(MaxTypeTagDepth) }, bcs.ErrLimit, "events[1]"},
		"multi-ed25519 threshold above keys": {func(r *Record) {
			k := r.Transaction.User.Authenticator.Sender.PublicKey
			k[len(k)-1] = 4
		}, ErrInvalid, "public_key"},
		"multi-ed25519 zero threshold": {func(r *Record) {
			k := r.Transaction.User.Authenticator.Sender.PublicKey
			k[len(k)-1] = 0
		}, ErrInvalid, "public_key"},
		"multi-ed25519 bitmap count": {func(r *Record) {
			s := r.Transaction.User.Authenticator.Sender.Signature
			s[len(s)-4] = 0xe0
		}, ErrInvalid, "signature"},
		"multi-ed25519 key length": {func(r *Record) { r.Transaction.User.Authenticator.Sender.PublicKey = rep(1, 64) }, ErrInvalid, "public_key"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := decodeChanged(t, base(), c.f)
			if err == nil {
				t.Fatal("decoded")
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("error %v, want %v at %s", err, c.want, c.path)
			}
		})
	}
	// Names outside the Move identifier grammar decode, as in aptos-core (the VM, not
	// the decoder, rejects them).
	if err := decodeChanged(t, base(), func(r *Record) { r.Events[0].TypeTag.Struct.Name = "9 Coin" }); err != nil {
		t.Fatal(err)
	}
	// One level less than the limit decodes.
	if err := decodeChanged(t, base(), func(r *Record) { r.Events[1].TypeTag = deep(MaxTypeTagDepth - 1) }); err != nil {
		t.Fatal(err)
	}
	// S of an Ed25519 signature must be below the group order L: L itself fails, L-1
	// decodes, in a single and in a multi signature.
	withS := func(s []byte) []byte { return append(rep(8, 32), s...) }
	order := groupOrder[:]
	below := bytes.Clone(order)
	below[0]--
	ed := syntheticRecords()["entry function, abort with info"]
	if err := decodeChanged(t, ed, func(r *Record) { r.Transaction.User.Authenticator.Sender.Signature = withS(order) }); !errors.Is(err, ErrInvalid) {
		t.Errorf("S = L: %v", err)
	}
	ed = syntheticRecords()["entry function, abort with info"]
	if err := decodeChanged(t, ed, func(r *Record) { r.Transaction.User.Authenticator.Sender.Signature = withS(below) }); err != nil {
		t.Errorf("S = L-1: %v", err)
	}
	if err := decodeChanged(t, base(), func(r *Record) {
		s := r.Transaction.User.Authenticator.Sender.Signature
		copy(s[64+32:128], rep(0xff, 32))
	}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "signature 1") {
		t.Errorf("multi-ed25519 S above L: %v", err)
	}
	// Ed25519 keys and signatures of the wrong length.
	ed = syntheticRecords()["entry function, abort with info"]
	for _, f := range []func(*Record){
		func(r *Record) { r.Transaction.User.Authenticator.Sender.PublicKey = rep(1, 31) },
		func(r *Record) { r.Transaction.User.Authenticator.Sender.Signature = rep(1, 63) },
	} {
		if err := decodeChanged(t, ed, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("short ed25519 material: %v", err)
		}
		ed = syntheticRecords()["entry function, abort with info"]
	}
}

func TestDecodeRejectsBytes(t *testing.T) {
	b := encodeRecord(syntheticRecords()["block metadata with failed proposers"])
	if _, err := DecodeRecord(append(bytes.Clone(b), 0)); !errors.Is(err, bcs.ErrTrailing) {
		t.Errorf("trailing byte: %v", err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := DecodeRecord(b[:n]); !errors.Is(err, bcs.ErrShort) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
	bad := bytes.Clone(b)
	bad[0] = byte(numTransactionKinds) // first unknown Transaction variant
	if _, err := DecodeRecord(bad); !errors.Is(err, bcs.ErrInvalid) || !strings.Contains(err.Error(), "transaction") {
		t.Errorf("unknown variant: %v", err)
	}
	if _, err := DecodeRecord(make([]byte, MaxRecordSize+1)); !errors.Is(err, bcs.ErrLimit) {
		t.Errorf("oversized record: %v", err)
	}
	// More sequence elements than a record may declare, each well-formed.
	many := syntheticRecords()["block metadata with failed proposers"]
	many.Transaction.BlockMetadata.FailedProposerIndices = make([]uint32, MaxRecordElements+1)
	if _, err := DecodeRecord(encodeRecord(many)); !errors.Is(err, bcs.ErrLimit) || !strings.Contains(err.Error(), "failed_proposer_indices") {
		t.Errorf("element budget: %v", err)
	}
}

func TestFrameReader(t *testing.T) {
	var data []byte
	for _, r := range [][]byte{{1, 2, 3}, {}, {4}} {
		data = append(data, byte(len(r)>>24), byte(len(r)>>16), byte(len(r)>>8), byte(len(r)))
		data = append(data, r...)
	}
	fr := NewFrameReader(bytes.NewReader(data), 8)
	for i, want := range [][]byte{{1, 2, 3}, {}, {4}} {
		got, err := fr.Next()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("record %d: %v %v", i, got, err)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	for n := 1; n < len(data); n++ {
		if n == 7 || n == 11 { // frame boundaries: a shorter but complete stream
			continue
		}
		fr := NewFrameReader(bytes.NewReader(data[:n]), 8)
		var err error
		for err == nil {
			_, err = fr.Next()
		}
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	big := []byte{0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if _, err := NewFrameReader(bytes.NewReader(big), 8).Next(); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized frame: %v", err)
	}
}

// seedRecords returns real records of each transaction kind and the synthetic ones.
func seedRecords(t testing.TB) [][]byte {
	var out [][]byte
	root := corpusPath(t)
	c := corpusChunks(t)[0]
	fr := NewFrameReader(bytes.NewReader(gunzip(t, filepath.Join(root, c.Name))), 0)
	perKind := map[TransactionKind]int{}
	for i := 0; i < 2000; i++ {
		b, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		rec, err := DecodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if perKind[rec.Transaction.Kind] < 3 || len(rec.Events) > 1 {
			out = append(out, b)
		}
		perKind[rec.Transaction.Kind]++
	}
	for _, r := range syntheticRecords() {
		out = append(out, encodeRecord(r))
	}
	return out
}

// FuzzDecodeRecord feeds DecodeRecord mutations of real and synthetic records: it must
// never panic, and a record it accepts must re-encode to exactly its input (the
// decoder is canonical and loses nothing) and hash without trouble.
func FuzzDecodeRecord(f *testing.F) {
	for _, b := range seedRecords(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if got := encodeRecord(rec); !bytes.Equal(got, b) {
			t.Fatalf("accepted record re-encodes differently:\n in %x\nout %x", b, got)
		}
		rec.Hash(aptos.DiemDomain)
		DetectDomain(rec)
	})
}

// FuzzDecodeChunkProof feeds DecodeChunkProof mutations of the real proof files.
func FuzzDecodeChunkProof(f *testing.F) {
	root := corpusPath(f)
	for _, c := range corpusChunks(f) {
		f.Add(gunzip(f, filepath.Join(root, c.ProofName)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeChunkProof(b)
		if err != nil {
			return
		}
		if v, err := newRangeVerifier(seedsOf(aptos.DiemDomain), 1, p.Range.LeftSiblings, p.Range.RightSiblings); err == nil {
			v.add(HashValue{})
			v.root()
		}
	})
}

// FuzzFrameReader feeds the chunk framing arbitrary streams (seeded with the start of a
// real chunk): no panic, no record above the limit, and the records read re-frame to
// exactly the bytes consumed.
func FuzzFrameReader(f *testing.F) {
	rc := loadRealChunk(f)
	f.Add(rc.data[:rc.offsets[3]])
	f.Add(rc.data[:rc.offsets[2]+7])
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 16
		fr := NewFrameReader(bytes.NewReader(b), limit)
		var out []byte
		for {
			rec, err := fr.Next()
			if err == io.EOF {
				if !bytes.Equal(out, b) {
					t.Fatalf("clean end after %d of %d bytes", len(out), len(b))
				}
				return
			}
			if err != nil {
				return
			}
			if len(rec) > limit {
				t.Fatalf("record of %d bytes above the limit", len(rec))
			}
			out = append(out, byte(len(rec)>>24), byte(len(rec)>>16), byte(len(rec)>>8), byte(len(rec)))
			out = append(out, rec...)
			if !bytes.HasPrefix(b, out) {
				t.Fatal("records do not re-frame to the input")
			}
		}
	})
}
