package openaiembed

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEmbedRequestAndResponse(t *testing.T) {
	var got struct {
		Model      string   `json:"model"`
		Input      []string `json:"input"`
		Dimensions int      `json:"dimensions"`
		Format     string   `json:"encoding_format"`
	}
	var auth, path, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, path, ctype = r.Header.Get("Authorization"), r.URL.Path, r.Header.Get("Content-Type")
		json.NewDecoder(r.Body).Decode(&got)
		// Out of order, as the API allows: the index decides.
		w.Write([]byte(`{"object":"list","data":[{"index":1,"embedding":[0,1,0]},{"index":0,"embedding":[1,0,0]}],"model":"m"}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v1/", Model: "bge-m3", APIKey: "sk-test", Dimensions: 3}
	vecs, err := c.Embed(context.Background(), []string{"一", "二"})
	if err != nil {
		t.Fatal(err)
	}
	if path != "/v1/embeddings" || auth != "Bearer sk-test" || ctype != "application/json" {
		t.Errorf("request path %q auth %q content type %q", path, auth, ctype)
	}
	if got.Model != "bge-m3" || len(got.Input) != 2 || got.Input[1] != "二" || got.Dimensions != 3 || got.Format != "float" {
		t.Errorf("request body %+v", got)
	}
	if vecs[0][0] != 1 || vecs[1][1] != 1 {
		t.Errorf("vectors not ordered by index: %v", vecs)
	}
	// No key, no header; no dimensions, none sent.
	c = &Client{BaseURL: srv.URL + "/v1", Model: "m"}
	got.Dimensions = -1
	if _, err := c.Embed(context.Background(), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if auth != "" || got.Dimensions != -1 { // -1: the key was left out
		t.Errorf("auth %q, dimensions %d sent without key or dimensions", auth, got.Dimensions)
	}
}

func TestEmbedErrors(t *testing.T) {
	for name, c := range map[string]struct {
		status int
		body   string
		dims   int
		want   string
	}{
		"server error":     {500, `{"error":{"message":"model not loaded"}}`, 0, "500 Internal Server Error: {\"error\":{\"message\":\"model not loaded\"}}"},
		"unauthorised":     {401, `invalid api key`, 0, "401 Unauthorized: invalid api key"},
		"error object":     {200, `{"error":{"message":"quota"}}`, 0, "embeddings: quota"},
		"not json":         {200, `<html>`, 0, "decode response"},
		"too few vectors":  {200, `{"data":[{"index":0,"embedding":[1]}]}`, 0, "1 vectors for 2 texts"},
		"repeated index":   {200, `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}`, 0, "bad or repeated index 0"},
		"wrong dimensions": {200, `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2]}]}`, 3, "vector of 2 dimensions, want 3"},
		"empty vector":     {200, `{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[1]}]}`, 0, "empty vector"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				w.Write([]byte(c.body))
			}))
			defer srv.Close()
			cl := &Client{BaseURL: srv.URL, Model: "m", Dimensions: c.dims}
			_, err := cl.Embed(context.Background(), []string{"a", "b"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestEmbedHonoursTheContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Client{BaseURL: srv.URL, Model: "m"}).Embed(ctx, []string{"a"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	if v, err := (&Client{BaseURL: srv.URL, Model: "m"}).Embed(context.Background(), nil); v != nil || err != nil {
		t.Fatalf("no texts: %v %v", v, err)
	}
}
