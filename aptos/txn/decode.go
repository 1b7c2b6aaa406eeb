package txn

import (
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// Limits of the decoder. They are far above what the chain accepts (a user transaction
// is at most 64 KiB, the VM rejects types nested more than a few dozen levels) and exist
// so that a malicious record cannot make the decoder use unbounded memory or stack.
const (
	// MaxRecordSize is the largest record DecodeRecord and the chunk reader accept.
	MaxRecordSize = 64 << 20
	// MaxTypeTagDepth is the deepest nesting of vector and struct type arguments a
	// TypeTag may have (within the bcs crate's container depth of 500, which aptos-core
	// decodes with).
	MaxTypeTagDepth = 128
	// MaxIdentifierLength is the longest Move identifier accepted (the Move binary
	// format's own limit).
	MaxIdentifierLength = 65535
	// MaxRecordElements is the most sequence elements (events, write set entries,
	// arguments, type arguments, signers, ...) one record may declare in total. It
	// bounds the decoded structures a small hostile record could make the decoder
	// allocate (each element can be as small as 3 bytes); aptos-core caps a user
	// transaction at 8192 write ops and its events at 10 MB.
	MaxRecordElements = 1 << 18
	// maxSeq bounds any single sequence; the bcs reader also checks each length
	// against the bytes left and the record's element budget.
	maxSeq = 1 << 24
	// maxMultiEd25519Keys is the most keys a MultiEd25519 key holds (aptos-crypto).
	maxMultiEd25519Keys = 32
)

// ErrInvalid is wrapped by decoding errors for values that are well-formed BCS but not
// valid for their type (a 31-byte public key, an unsorted map).
var ErrInvalid = errors.New("invalid value")

// DecodeRecord decodes one transaction-backup record (the bytes inside one length
// frame of a chunk file): the BCS tuple (Transaction, TransactionInfo,
// Vec<ContractEvent>, WriteSet) of the Aptos framework as used in 2023. Decoding is
// strict: every byte must be consumed, every enum variant must be known, every
// length, option tag, bool and map order canonical. The returned Record aliases b.
func DecodeRecord(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("decode record: %d bytes, limit %d: %w", len(b), MaxRecordSize, bcs.ErrLimit)
	}
	d := decoder{r: bcs.NewReader(b, bcs.Limits{MaxInput: MaxRecordSize, MaxElements: MaxRecordElements})}
	rec := &Record{}
	r := d.r

	start := r.Offset()
	r.Push("transaction")
	d.transaction(&rec.Transaction)
	r.Pop()
	rec.txnBytes = r.Since(start)

	start = r.Offset()
	r.Push("transaction_info")
	d.transactionInfo(&rec.Info)
	r.Pop()
	rec.infoBytes = r.Since(start)

	rec.Events, rec.eventBytes = d.events("events")

	start = r.Offset()
	r.Push("write_set")
	d.writeSet(&rec.WriteSet)
	r.Pop()
	rec.writeSetBytes = r.Since(start)

	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return rec, nil
}

type decoder struct {
	r *bcs.Reader
}

func (d *decoder) failf(field, format string, args ...any) {
	d.r.Fail(field, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

func (d *decoder) ok() bool { return d.r.Err() == nil }

func (d *decoder) address(field string) Address { return Address(d.r.Fixed32(field)) }

func (d *decoder) hash(field string) HashValue { return HashValue(d.r.Fixed32(field)) }

func (d *decoder) optHash(field string) *HashValue {
	if !d.r.Option(field) {
		return nil
	}
	h := d.hash(field)
	return &h
}

// identifier reads a Move identifier. Like aptos-core's Identifier (a plain serde
// newtype over a string), it is any UTF-8 string: the Move identifier grammar is
// enforced by the VM when the name is used, not when a transaction is decoded, so a
// committed transaction may carry a name outside it.
func (d *decoder) identifier(field string) string {
	return d.r.String(field, MaxIdentifierLength)
}

func (d *decoder) moduleID(field string, m *ModuleID) {
	d.r.Push(field)
	m.Address = d.address("address")
	m.Name = d.identifier("name")
	d.r.Pop()
}

func (d *decoder) transaction(t *Transaction) {
	r := d.r
	t.Kind = TransactionKind(r.Variant("variant", uint32(numTransactionKinds)))
	if !d.ok() {
		return
	}
	switch t.Kind {
	case KindUser:
		t.User = &SignedTransaction{}
		r.Push("UserTransaction")
		d.signedTransaction(t.User)
		r.Pop()
	case KindGenesis:
		t.Genesis = &WriteSetPayload{}
		r.Push("GenesisTransaction")
		d.writeSetPayload(t.Genesis)
		r.Pop()
	case KindBlockMetadata:
		t.BlockMetadata = &BlockMetadata{}
		r.Push("BlockMetadata")
		d.blockMetadata(t.BlockMetadata)
		r.Pop()
	case KindStateCheckpoint:
		t.StateCheckpoint = d.hash("StateCheckpoint")
	}
}

func (d *decoder) blockMetadata(b *BlockMetadata) {
	r := d.r
	b.ID = d.hash("id")
	b.Epoch = r.U64("epoch")
	b.Round = r.U64("round")
	b.Proposer = d.address("proposer")
	b.PreviousBlockVotesBitvec = r.Bytes("previous_block_votes_bitvec", maxSeq)
	n := r.SeqLen("failed_proposer_indices", maxSeq, 4)
	if n > 0 {
		b.FailedProposerIndices = make([]uint32, n)
		for i := range b.FailedProposerIndices {
			b.FailedProposerIndices[i] = r.U32("failed_proposer_indices")
		}
	}
	b.TimestampUsecs = r.U64("timestamp_usecs")
}

func (d *decoder) signedTransaction(s *SignedTransaction) {
	r := d.r
	r.Push("raw_txn")
	raw := &s.Raw
	raw.Sender = d.address("sender")
	raw.SequenceNumber = r.U64("sequence_number")
	r.Push("payload")
	d.payload(&raw.Payload)
	r.Pop()
	raw.MaxGasAmount = r.U64("max_gas_amount")
	raw.GasUnitPrice = r.U64("gas_unit_price")
	raw.ExpirationTimestampSecs = r.U64("expiration_timestamp_secs")
	raw.ChainID = r.U8("chain_id")
	r.Pop()
	r.Push("authenticator")
	d.transactionAuthenticator(&s.Authenticator)
	r.Pop()
}

func (d *decoder) payload(p *TransactionPayload) {
	r := d.r
	p.Kind = PayloadKind(r.Variant("variant", uint32(numPayloadKinds)))
	if !d.ok() {
		return
	}
	switch p.Kind {
	case PayloadScript:
		p.Script = &Script{}
		r.Push("Script")
		d.script(p.Script)
		r.Pop()
	case PayloadModuleBundle:
		n := r.SeqLen("ModuleBundle", maxSeq, 1)
		p.Modules = make([][]byte, 0, n)
		for i := 0; i < n && d.ok(); i++ {
			r.PushIndex("ModuleBundle", i)
			p.Modules = append(p.Modules, r.Bytes("code", maxSeq))
			r.Pop()
		}
	case PayloadEntryFunction:
		p.EntryFunction = &EntryFunction{}
		r.Push("EntryFunction")
		d.entryFunction(p.EntryFunction)
		r.Pop()
	case PayloadMultisig:
		p.Multisig = &Multisig{}
		r.Push("Multisig")
		p.Multisig.MultisigAddress = d.address("multisig_address")
		if r.Option("transaction_payload") {
			r.Push("transaction_payload")
			// MultisigTransactionPayload has one variant, EntryFunction.
			r.Variant("variant", 1)
			p.Multisig.EntryFunction = &EntryFunction{}
			r.Push("EntryFunction")
			d.entryFunction(p.Multisig.EntryFunction)
			r.Pop()
			r.Pop()
		}
		r.Pop()
	}
}

func (d *decoder) script(s *Script) {
	r := d.r
	s.Code = r.Bytes("code", maxSeq)
	s.TyArgs = d.typeTags("ty_args")
	n := r.SeqLen("args", maxSeq, 2)
	if n > 0 {
		s.Args = make([]TransactionArgument, 0, n)
	}
	for i := 0; i < n && d.ok(); i++ {
		r.PushIndex("args", i)
		var a TransactionArgument
		a.Kind = ArgKind(r.Variant("variant", uint32(numArgKinds)))
		switch a.Kind {
		case ArgU8:
			a.Value = r.Fixed("U8", 1)
		case ArgU64:
			a.Value = r.Fixed("U64", 8)
		case ArgU128:
			a.Value = r.Fixed("U128", 16)
		case ArgAddress:
			a.Value = r.Fixed("Address", 32)
		case ArgU8Vector:
			a.Value = r.Bytes("U8Vector", maxSeq)
		case ArgBool:
			start := r.Offset()
			r.Bool("Bool")
			a.Value = r.Since(start)
		case ArgU16:
			a.Value = r.Fixed("U16", 2)
		case ArgU32:
			a.Value = r.Fixed("U32", 4)
		case ArgU256:
			a.Value = r.Fixed("U256", 32)
		}
		s.Args = append(s.Args, a)
		r.Pop()
	}
}

func (d *decoder) entryFunction(e *EntryFunction) {
	r := d.r
	d.moduleID("module", &e.Module)
	e.Function = d.identifier("function")
	e.TyArgs = d.typeTags("ty_args")
	n := r.SeqLen("args", maxSeq, 1)
	if n > 0 {
		e.Args = make([][]byte, 0, n)
	}
	for i := 0; i < n && d.ok(); i++ {
		r.PushIndex("args", i)
		e.Args = append(e.Args, r.Bytes("arg", maxSeq))
		r.Pop()
	}
}

func (d *decoder) typeTags(field string) []TypeTag {
	r := d.r
	n := r.SeqLen(field, maxSeq, 1)
	if n == 0 || !d.ok() {
		return nil
	}
	tags := make([]TypeTag, 0, n)
	for i := 0; i < n && d.ok(); i++ {
		r.PushIndex(field, i)
		var t TypeTag
		d.typeTag(&t, 1)
		tags = append(tags, t)
		r.Pop()
	}
	return tags
}

// typeTag reads one TypeTag at nesting depth depth (1 for a top-level tag).
func (d *decoder) typeTag(t *TypeTag, depth int) {
	r := d.r
	if depth > MaxTypeTagDepth {
		r.Fail("type_tag", fmt.Errorf("%w: type tag nested deeper than %d", bcs.ErrLimit, MaxTypeTagDepth))
		return
	}
	t.Kind = TypeTagKind(r.Variant("type_tag", uint32(numTypeTagKinds)))
	if !d.ok() {
		return
	}
	switch t.Kind {
	case TypeVector:
		t.Elem = &TypeTag{}
		r.Push("vector")
		d.typeTag(t.Elem, depth+1)
		r.Pop()
	case TypeStruct:
		s := &StructTag{}
		t.Struct = s
		r.Push("struct")
		s.Address = d.address("address")
		s.Module = d.identifier("module")
		s.Name = d.identifier("name")
		n := r.SeqLen("type_args", maxSeq, 1)
		if n > 0 && d.ok() {
			s.TypeArgs = make([]TypeTag, 0, n)
		}
		for i := 0; i < n && d.ok(); i++ {
			r.PushIndex("type_args", i)
			var a TypeTag
			d.typeTag(&a, depth+1)
			s.TypeArgs = append(s.TypeArgs, a)
			r.Pop()
		}
		r.Pop()
	}
}

func (d *decoder) transactionAuthenticator(a *TransactionAuthenticator) {
	r := d.r
	a.Kind = AuthKind(r.Variant("variant", uint32(numAuthKinds)))
	if !d.ok() {
		return
	}
	switch a.Kind {
	case AuthEd25519:
		r.Push("Ed25519")
		a.Sender.Kind = AccountEd25519
		d.ed25519(&a.Sender)
		r.Pop()
	case AuthMultiEd25519:
		r.Push("MultiEd25519")
		a.Sender.Kind = AccountMultiEd25519
		d.multiEd25519(&a.Sender)
		r.Pop()
	case AuthMultiAgent, AuthFeePayer:
		name := "MultiAgent"
		if a.Kind == AuthFeePayer {
			name = "FeePayer"
		}
		r.Push(name)
		r.Push("sender")
		d.accountAuthenticator(&a.Sender)
		r.Pop()
		n := r.SeqLen("secondary_signer_addresses", maxSeq, 32)
		if n > 0 && d.ok() {
			a.SecondarySignerAddresses = make([]Address, n)
			for i := range a.SecondarySignerAddresses {
				a.SecondarySignerAddresses[i] = d.address("secondary_signer_addresses")
			}
		}
		m := r.SeqLen("secondary_signers", maxSeq, 2)
		if m > 0 && d.ok() {
			a.SecondarySigners = make([]AccountAuthenticator, m)
			for i := range a.SecondarySigners {
				r.PushIndex("secondary_signers", i)
				d.accountAuthenticator(&a.SecondarySigners[i])
				r.Pop()
			}
		}
		if a.Kind == AuthFeePayer {
			a.FeePayerAddress = d.address("fee_payer_address")
			a.FeePayerSigner = &AccountAuthenticator{}
			r.Push("fee_payer_signer")
			d.accountAuthenticator(a.FeePayerSigner)
			r.Pop()
		}
		r.Pop()
	}
}

func (d *decoder) accountAuthenticator(a *AccountAuthenticator) {
	a.Kind = AccountAuthKind(d.r.Variant("variant", uint32(numAccountAuthKinds)))
	if !d.ok() {
		return
	}
	switch a.Kind {
	case AccountEd25519:
		d.r.Push("Ed25519")
		d.ed25519(a)
		d.r.Pop()
	case AccountMultiEd25519:
		d.r.Push("MultiEd25519")
		d.multiEd25519(a)
		d.r.Pop()
	}
}

// ed25519 reads an Ed25519 public key (32 bytes) and signature (64 bytes), each a
// length-prefixed byte string.
func (d *decoder) ed25519(a *AccountAuthenticator) {
	a.PublicKey = d.r.Bytes("public_key", 32)
	if d.ok() && len(a.PublicKey) != 32 {
		d.failf("public_key", "Ed25519 public key of %d bytes", len(a.PublicKey))
	}
	a.Signature = d.r.Bytes("signature", 64)
	if d.ok() && len(a.Signature) != 64 {
		d.failf("signature", "Ed25519 signature of %d bytes", len(a.Signature))
	}
	if d.ok() && !canonicalS(a.Signature[32:]) {
		d.failf("signature", "Ed25519 signature's S is not below the group order")
	}
}

// groupOrder is the order L of the Ed25519 base point, little-endian.
var groupOrder = [32]byte{
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
}

// canonicalS reports whether the little-endian scalar s (32 bytes) is below L.
// aptos-crypto rejects a signature whose S is not (check_s_malleability) before it
// verifies one, so no committed transaction carries such a signature.
func canonicalS(s []byte) bool {
	for i := 31; i >= 0; i-- {
		if s[i] != groupOrder[i] {
			return s[i] < groupOrder[i]
		}
	}
	return false // equal to L
}

// multiEd25519 reads a MultiEd25519 public key (N 32-byte keys then a threshold byte,
// 1 <= threshold <= N <= 32) and signature (K 64-byte signatures then a 4-byte bitmap
// with exactly K bits set, all below N is not checkable here, so below 32).
func (d *decoder) multiEd25519(a *AccountAuthenticator) {
	a.PublicKey = d.r.Bytes("public_key", maxMultiEd25519Keys*32+1)
	if d.ok() {
		n := len(a.PublicKey) / 32
		if len(a.PublicKey)%32 != 1 || n == 0 {
			d.failf("public_key", "MultiEd25519 public key of %d bytes", len(a.PublicKey))
		} else if t := int(a.PublicKey[len(a.PublicKey)-1]); t == 0 || t > n {
			d.failf("public_key", "MultiEd25519 threshold %d of %d keys", t, n)
		}
	}
	a.Signature = d.r.Bytes("signature", maxMultiEd25519Keys*64+4)
	if d.ok() {
		k := len(a.Signature) / 64
		if len(a.Signature)%64 != 4 || k == 0 {
			d.failf("signature", "MultiEd25519 signature of %d bytes", len(a.Signature))
			return
		}
		bm := a.Signature[len(a.Signature)-4:]
		bits := 0
		for _, c := range bm {
			for ; c != 0; c &= c - 1 {
				bits++
			}
		}
		if bits != k {
			d.failf("signature", "MultiEd25519 bitmap has %d bits set for %d signatures", bits, k)
			return
		}
		for i := 0; i < k; i++ {
			if !canonicalS(a.Signature[i*64+32 : i*64+64]) {
				d.failf("signature", "MultiEd25519 signature %d's S is not below the group order", i)
				return
			}
		}
	}
}

func (d *decoder) writeSetPayload(p *WriteSetPayload) {
	r := d.r
	p.Kind = WriteSetPayloadKind(r.Variant("variant", uint32(numWriteSetPayloadKinds)))
	if !d.ok() {
		return
	}
	switch p.Kind {
	case WriteSetDirect:
		r.Push("Direct")
		r.Push("write_set")
		d.writeSet(&p.WriteSet)
		r.Pop()
		p.Events, _ = d.events("events")
		r.Pop()
	case WriteSetScript:
		r.Push("Script")
		p.ExecuteAs = d.address("execute_as")
		p.Script = &Script{}
		r.Push("script")
		d.script(p.Script)
		r.Pop()
		r.Pop()
	}
}

func (d *decoder) transactionInfo(t *TransactionInfo) {
	r := d.r
	r.Variant("variant", 1) // TransactionInfo::V0
	r.Push("V0")
	t.GasUsed = r.U64("gas_used")
	r.Push("status")
	d.executionStatus(&t.Status)
	r.Pop()
	t.TransactionHash = d.hash("transaction_hash")
	t.EventRootHash = d.hash("event_root_hash")
	t.StateChangeHash = d.hash("state_change_hash")
	t.StateCheckpointHash = d.optHash("state_checkpoint_hash")
	t.StateCemeteryHash = d.optHash("state_cemetery_hash")
	r.Pop()
}

func (d *decoder) abortLocation(field string, l *AbortLocation) {
	r := d.r
	r.Push(field)
	switch r.Variant("variant", 2) {
	case 0:
		d.moduleID("Module", &l.Module)
	case 1:
		l.Script = true
	}
	r.Pop()
}

func (d *decoder) executionStatus(s *ExecutionStatus) {
	r := d.r
	s.Kind = StatusKind(r.Variant("variant", uint32(numStatusKinds)))
	if !d.ok() {
		return
	}
	switch s.Kind {
	case StatusMoveAbort:
		r.Push("MoveAbort")
		d.abortLocation("location", &s.Location)
		s.Code = r.U64("code")
		if r.Option("info") {
			r.Push("info")
			s.Info = &AbortInfo{
				ReasonName:  r.String("reason_name", maxSeq),
				Description: r.String("description", maxSeq),
			}
			r.Pop()
		}
		r.Pop()
	case StatusExecutionFailure:
		r.Push("ExecutionFailure")
		d.abortLocation("location", &s.Location)
		s.Function = r.U16("function")
		s.CodeOffset = r.U16("code_offset")
		r.Pop()
	case StatusMiscellaneousError:
		if r.Option("MiscellaneousError") {
			c := r.U64("MiscellaneousError")
			s.StatusCode = &c
		}
	}
}

// events reads a Vec<ContractEvent> and returns the events with the BCS bytes of each.
func (d *decoder) events(field string) ([]ContractEvent, [][]byte) {
	r := d.r
	n := r.SeqLen(field, maxSeq, 3)
	if n == 0 || !d.ok() {
		return nil, nil
	}
	evs := make([]ContractEvent, n)
	raw := make([][]byte, n)
	for i := 0; i < n && d.ok(); i++ {
		r.PushIndex(field, i)
		start := r.Offset()
		e := &evs[i]
		e.Kind = EventKind(r.Variant("variant", uint32(numEventKinds)))
		switch e.Kind {
		case EventV0:
			r.Push("V0")
			r.Push("key")
			e.Key.CreationNumber = r.U64("creation_number")
			e.Key.AccountAddress = d.address("account_address")
			r.Pop()
			e.SequenceNumber = r.U64("sequence_number")
			r.Push("type_tag")
			d.typeTag(&e.TypeTag, 1)
			r.Pop()
			e.Data = r.Bytes("event_data", maxSeq)
			r.Pop()
		case EventV1:
			r.Push("V1")
			r.Push("type_tag")
			d.typeTag(&e.TypeTag, 1)
			r.Pop()
			e.Data = r.Bytes("event_data", maxSeq)
			r.Pop()
		}
		raw[i] = r.Since(start)
		r.Pop()
	}
	return evs, raw
}

// writeSet reads a WriteSet: the enum's V0 variant holding a BTreeMap<StateKey,
// WriteOp>, which BCS encodes as a length then pairs in strictly increasing order of the
// keys' BCS bytes.
func (d *decoder) writeSet(w *WriteSet) {
	r := d.r
	r.Variant("variant", 1) // WriteSet::V0
	n := r.SeqLen("write_set", maxSeq, 3)
	if n == 0 || !d.ok() {
		return
	}
	w.Entries = make([]WriteSetEntry, n)
	var prevKey []byte
	for i := 0; i < n && d.ok(); i++ {
		r.PushIndex("write_set", i)
		e := &w.Entries[i]
		start := r.Offset()
		r.Push("key")
		d.stateKey(&e.Key)
		r.Pop()
		key := r.Since(start)
		if d.ok() && prevKey != nil && compareBytes(prevKey, key) >= 0 {
			d.failf("key", "write set keys not in strictly increasing BCS order")
		}
		prevKey = key
		r.Push("op")
		d.writeOp(&e.Op)
		r.Pop()
		r.Pop()
	}
}

func compareBytes(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func (d *decoder) stateKey(k *StateKey) {
	r := d.r
	k.Kind = StateKeyKind(r.Variant("variant", uint32(numStateKeyKinds)))
	if !d.ok() {
		return
	}
	switch k.Kind {
	case StateKeyAccessPath:
		r.Push("AccessPath")
		k.Address = d.address("address")
		k.Path = r.Bytes("path", maxSeq)
		r.Pop()
	case StateKeyTableItem:
		r.Push("TableItem")
		k.Address = d.address("handle")
		k.Path = r.Bytes("key", maxSeq)
		r.Pop()
	case StateKeyRaw:
		k.Path = r.Bytes("Raw", maxSeq)
	}
}

func (d *decoder) writeOp(o *WriteOp) {
	r := d.r
	o.Kind = WriteOpKind(r.Variant("variant", uint32(numWriteOpKinds)))
	if !d.ok() {
		return
	}
	switch o.Kind {
	case OpCreation, OpModification:
		o.Data = r.Bytes("data", maxSeq)
	case OpDeletion:
	case OpCreationWithMetadata, OpModificationWithMetadata:
		o.Data = r.Bytes("data", maxSeq)
		o.Metadata = d.stateValueMetadata()
	case OpDeletionWithMetadata:
		o.Metadata = d.stateValueMetadata()
	}
}

func (d *decoder) stateValueMetadata() *StateValueMetadata {
	r := d.r
	r.Push("metadata")
	defer r.Pop()
	m := &StateValueMetadata{}
	switch r.Variant("variant", 2) {
	case 0:
		m.Deposit = r.U64("deposit")
		m.CreationTimeUsecs = r.U64("creation_time_usecs")
	case 1:
		m.V1 = true
		m.Deposit = r.U64("slot_deposit")
		m.BytesDeposit = r.U64("bytes_deposit")
		m.CreationTimeUsecs = r.U64("creation_time_usecs")
	}
	return m
}
