// github.com/sashabaranov/go-openai on top of barrage's http.RoundTripper,
// against the mock: a chat completion and a streamed one.
package oaitest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
	openai "github.com/sashabaranov/go-openai"
)

// startMock runs $BARRAGE_MOCKSERVER on a free port; returns its base URL and CA file.
func startMock(t *testing.T) (string, string) {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cmd := exec.Command(os.Getenv("BARRAGE_MOCKSERVER"), "--port", "0", "--write-ca", ca)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening on ") {
				lines <- strings.TrimPrefix(sc.Text(), "listening on ")
			}
		}
	}()
	select {
	case base := <-lines:
		return base, ca
	case <-time.After(10 * time.Second):
		t.Fatal("mock did not start")
	}
	return "", ""
}

func client(t *testing.T) *openai.Client {
	base, ca := startMock(t)
	c, err := barrage.New(barrage.Options{CAFile: ca, MaxRetries: barrage.Int(1), BackoffBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := openai.DefaultConfig("sk-test-not-a-real-key")
	cfg.BaseURL = base + "/v1"
	cfg.HTTPClient = &http.Client{Transport: c.Transport()}
	return openai.NewClientWithConfig(cfg)
}

func TestGoOpenAIChat(t *testing.T) {
	oc := client(t)
	resp, err := oc.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "mock",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "hello from go-openai"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || !strings.HasSuffix(resp.Choices[0].Message.Content, ": hello from go-openai") ||
		resp.Object != "chat.completion" {
		t.Fatalf("answer %+v", resp)
	}
}

func TestGoOpenAIStream(t *testing.T) {
	oc := client(t)
	st, err := oc.CreateChatCompletionStream(context.Background(), openai.ChatCompletionRequest{
		Model:    "mock",
		Stream:   true,
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "one two three four"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var text strings.Builder
	n := 0
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			text.WriteString(chunk.Choices[0].Delta.Content)
			n++
		}
	}
	if n < 2 || !strings.Contains(text.String(), "one two three four") {
		t.Fatalf("%d token events, text %q", n, text.String())
	}
}

func TestGoOpenAIHTTPError(t *testing.T) {
	base, ca := startMock(t)
	c, err := barrage.New(barrage.Options{CAFile: ca, MaxRetries: barrage.Int(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = base + "/nowhere" // the mock answers 404 with an OpenAI error body
	cfg.HTTPClient = &http.Client{Transport: c.Transport()}
	_, err = openai.NewClientWithConfig(cfg).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: "mock", Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: "x"}}})
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		if apiErr.HTTPStatusCode != 404 {
			t.Fatalf("status %d: %v", apiErr.HTTPStatusCode, err)
		}
	case errors.As(err, &reqErr):
		if reqErr.HTTPStatusCode != 404 {
			t.Fatalf("status %d: %v", reqErr.HTTPStatusCode, err)
		}
	default:
		t.Fatalf("want a 404 API error, got %v", err)
	}
}
