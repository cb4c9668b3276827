// Package openaiembed is a client for OpenAI-compatible embeddings
// endpoints (POST {base}/embeddings), as served by OpenAI, Ollama, vLLM,
// text-embeddings-inference, DashScope's compatible mode and others. It
// implements bot.Embedder.
package openaiembed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls one embeddings endpoint with one model.
type Client struct {
	// BaseURL is the API root including its version, e.g.
	// "http://localhost:11434/v1"; requests go to BaseURL + "/embeddings".
	BaseURL string
	Model   string
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// Dimensions, when > 0, is sent as "dimensions" (models that can
	// shorten their vectors honour it) and every vector must have it.
	Dimensions int
	// HTTP is the client to use; nil means http.DefaultClient. Deadlines
	// come from the caller's context.
	HTTP *http.Client
}

type request struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	Dimensions     int      `json:"dimensions,omitempty"`
	EncodingFormat string   `json:"encoding_format"`
}

type response struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// maxErrorBody bounds how much of an error response is quoted.
const maxErrorBody = 512

// Embed returns one vector per text, in order.
func (c *Client) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	body, err := json.Marshal(request{Model: c.Model, Input: texts, Dimensions: c.Dimensions, EncodingFormat: "float"})
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(c.BaseURL, "/") + "/embeddings"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, fmt.Errorf("embeddings: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("embeddings: decode response: %w", err)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("embeddings: %s", r.Error.Message)
	}
	if len(r.Data) != len(texts) {
		return nil, fmt.Errorf("embeddings: %d vectors for %d texts", len(r.Data), len(texts))
	}
	out := make([][]float32, len(texts))
	for _, d := range r.Data {
		if d.Index < 0 || d.Index >= len(texts) || out[d.Index] != nil {
			return nil, fmt.Errorf("embeddings: bad or repeated index %d", d.Index)
		}
		if len(d.Embedding) == 0 {
			return nil, errors.New("embeddings: empty vector")
		}
		if c.Dimensions > 0 && len(d.Embedding) != c.Dimensions {
			return nil, fmt.Errorf("embeddings: vector of %d dimensions, want %d", len(d.Embedding), c.Dimensions)
		}
		out[d.Index] = d.Embedding
	}
	return out, nil
}
