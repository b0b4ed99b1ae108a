// RunBatch: a JSONL batch against the mock with progress and cost, an
// aborted run resumed to completion with every custom_id exactly once.
package barrage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func writeBatchInput(t *testing.T, path string, n int) {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"document %d"}]}}`+"\n", i, i)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readBatchOutput returns custom_id -> HTTP status, failing on duplicates
// and on answers that do not echo their document.
func readBatchOutput(t *testing.T, path string) map[string]int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int             `json:"status_code"`
				Body       json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		if _, dup := got[l.CustomID]; dup {
			t.Fatalf("custom_id %s written twice", l.CustomID)
		}
		got[l.CustomID] = l.Response.StatusCode
		doc := "document " + strings.TrimPrefix(l.CustomID, "req-")
		if l.Response.StatusCode == 200 && !strings.HasSuffix(content(t, l.Response.Body), ": "+doc) {
			t.Fatalf("%s: answer does not echo %q", l.CustomID, doc)
		}
	}
	return got
}

func TestRunBatchResume(t *testing.T) {
	m := startMock(t, "--latency-ms", "40")
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	const n = 400
	writeBatchInput(t, in, n)
	t.Setenv("BARRAGE_GO_TEST_KEY", "sk-test")
	opts := barrage.Options{CAFile: m.caFile, MaxInflight: 8}
	b := barrage.BatchOptions{Input: in, Output: out, Endpoint: base, APIKeyEnv: "BARRAGE_GO_TEST_KEY", Resume: true}

	// First run: aborted by its context part-way.
	ctx, cancel := context.WithCancel(context.Background())
	var calls int32
	b.Progress = func(p barrage.BatchProgress) {
		atomic.AddInt32(&calls, 1)
		if p.Done >= 50 {
			cancel()
		}
	}
	t0 := time.Now()
	p1, err := barrage.RunBatch(ctx, opts, b)
	if !errors.Is(err, barrage.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("aborted run: %v (%+v)", err, p1)
	}
	if p1.Done < 50 || p1.Done >= n || time.Since(t0) > 10*time.Second || atomic.LoadInt32(&calls) < 2 {
		t.Fatalf("aborted run: %+v after %v, %d progress calls", p1, time.Since(t0), calls)
	}
	first := readBatchOutput(t, out)
	// Second run resumes: skips what is written, runs the rest.
	b.Progress = nil
	p2, err := barrage.RunBatch(context.Background(), opts, b)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Skipped != uint64(len(first)) || p2.Total != uint64(n-len(first)) || p2.OK != p2.Total || p2.Failed != 0 {
		t.Fatalf("resumed run: %+v (first wrote %d)", p2, len(first))
	}
	if p2.CostUSD <= 0 || p2.PromptTokens <= 0 || p2.CompletionTokens <= 0 {
		t.Fatalf("no cost/tokens: %+v", p2)
	}
	all := readBatchOutput(t, out)
	for i := 0; i < n; i++ {
		if all[fmt.Sprintf("req-%d", i)] != 200 {
			t.Fatalf("req-%d: status %d", i, all[fmt.Sprintf("req-%d", i)])
		}
	}
	t.Logf("aborted at %d/%d, resumed %d (skipped %d), cost $%.6f", p1.Done, n, p2.Done, p2.Skipped, p2.CostUSD)
	// A bad input is refused before anything is sent.
	if _, err := barrage.RunBatch(context.Background(), opts, barrage.BatchOptions{Input: filepath.Join(dir, "missing"), Output: out}); !errors.Is(err, barrage.ErrInvalid) {
		t.Fatalf("missing input: %v", err)
	}
}
