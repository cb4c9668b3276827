package bot

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// The embedding cache is one file per model in the cache dir, holding the
// vectors of the last build's questions: a header (magic, dimensions), then
// records of a 16-byte key (SHA-256 of model and text, truncated) and the
// vector as little-endian float32. It is rewritten, through a temporary file
// and a rename, after every build, so it never holds more than one
// knowledge base's questions.

// cacheKey identifies one text embedded by one model.
type cacheKey [16]byte

func keyOf(model, text string) cacheKey {
	h := sha256.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(text))
	var k cacheKey
	copy(k[:], h.Sum(nil))
	return k
}

const cacheMagic = "DDEMB1\n\x00"

func cachePath(dir, model string) string {
	sum := sha256.Sum256([]byte(model))
	return filepath.Join(dir, "embeddings-"+hex.EncodeToString(sum[:8])+".bin")
}

// readCache returns the cached vectors whose keys want holds. A missing
// file is an empty cache.
func readCache(dir, model string, want map[cacheKey]bool) (map[cacheKey][]float32, error) {
	out := map[cacheKey][]float32{}
	f, err := os.Open(cachePath(dir, model))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	head := make([]byte, len(cacheMagic)+4)
	if _, err := io.ReadFull(r, head); err != nil || string(head[:len(cacheMagic)]) != cacheMagic {
		return out, fmt.Errorf("%s: not an embedding cache", f.Name())
	}
	dims := int(binary.LittleEndian.Uint32(head[len(cacheMagic):]))
	if dims <= 0 || dims > 1<<16 {
		return out, fmt.Errorf("%s: bad dimensions %d", f.Name(), dims)
	}
	rec := make([]byte, 16+4*dims)
	for {
		if _, err := io.ReadFull(r, rec); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, fmt.Errorf("%s: truncated", f.Name())
		}
		var k cacheKey
		copy(k[:], rec)
		if !want[k] {
			continue
		}
		v := make([]float32, dims)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(rec[16+4*i:]))
		}
		out[k] = v
	}
}

func writeCache(dir, model string, dims int, vecs map[cacheKey][]float32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".embeddings-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	w := bufio.NewWriterSize(f, 1<<16)
	head := []byte(cacheMagic)
	head = binary.LittleEndian.AppendUint32(head, uint32(dims))
	w.Write(head)
	rec := make([]byte, 0, 16+4*dims)
	for k, v := range vecs {
		if len(v) != dims {
			continue
		}
		rec = append(rec[:0], k[:]...)
		for _, x := range v {
			rec = binary.LittleEndian.AppendUint32(rec, math.Float32bits(x))
		}
		w.Write(rec)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), cachePath(dir, model))
}
