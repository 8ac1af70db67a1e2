package audit

// InclusionProof is an RFC 6962 audit path of the leaf at Index in the
// tree of Size, as the public API serves it and its clients read it.
type InclusionProof struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash []byte   `json:"leaf_hash"`
	Hashes   [][]byte `json:"hashes"`
}

// ConsistencyProof shows the tree of size From is a prefix of the tree of
// size To.
type ConsistencyProof struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"`
}
