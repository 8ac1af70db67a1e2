package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// GenerateKey makes an Ed25519 note key pair named name (by convention the
// log's origin): the secret signer key (PRIVATE+KEY+...) and the public
// verifier key (name+hash+base64key).
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate key: %w", err)
	}
	return skey, vkey, nil
}

// ParseSignerKey reads a signer key and derives its verifier key, which
// the note package does not expose.
func ParseSignerKey(skey string) (note.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("audit: signer key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>
	parts := strings.SplitN(strings.TrimPrefix(skey, "PRIVATE+KEY+"), "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, "", errors.New("audit: signer key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, "", fmt.Errorf("audit: verifier key: %w", err)
	}
	return signer, vkey, nil
}

// LoadSignerKey reads a signer key file: the first line that is neither
// empty nor a # comment.
func LoadSignerKey(path string) (note.Signer, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("audit: read signer key: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return ParseSignerKey(line)
		}
	}
	return nil, "", fmt.Errorf("audit: %s holds no signer key", path)
}

// WriteKeyFiles writes the signer key to path, readable by its owner only,
// and the verifier key to path.pub.
func WriteKeyFiles(path, skey, vkey string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit: key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit: write signer key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("audit: write signer key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: write signer key: %w", err)
	}
	if err := os.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("audit: write verifier key: %w", err)
	}
	return nil
}

// LoadOrCreateSignerKey loads the signer key at path, or, when there is
// none, generates one named name and writes it there (and its verifier
// key to path.pub). created reports which happened.
func LoadOrCreateSignerKey(path, name string) (signer note.Signer, vkey string, created bool, err error) {
	if _, statErr := os.Stat(path); statErr == nil {
		signer, vkey, err = LoadSignerKey(path)
		return signer, vkey, false, err
	} else if !errors.Is(statErr, os.ErrNotExist) {
		return nil, "", false, fmt.Errorf("audit: signer key: %w", statErr)
	}
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		return nil, "", false, err
	}
	if err := WriteKeyFiles(path, skey, vkey); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Another process won the race: use its key.
			signer, vkey, err = LoadSignerKey(path)
			return signer, vkey, false, err
		}
		return nil, "", false, err
	}
	signer, vkey, err = ParseSignerKey(skey)
	return signer, vkey, true, err
}
