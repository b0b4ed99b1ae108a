// Command example sends a few chat requests through barrage.
//
//	go run ./example https://127.0.0.1:PORT/v1/chat/completions [CA_FILE]
//
// (start build/mockserver/barrage-mockserver --port 0 --write-ca /tmp/ca.pem)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: example URL [CA_FILE]")
		os.Exit(2)
	}
	opts := barrage.Options{FromEnv: true, MaxInflight: 16, MaxRetries: barrage.Int(1)}
	if len(os.Args) > 2 {
		opts.CAFile = os.Args[2]
	}
	c, err := barrage.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()

	var reqs []*barrage.Request
	for i := 0; i < 5; i++ {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"question %d"}]}`, i)
		reqs = append(reqs, &barrage.Request{
			URL:     os.Args[1],
			Headers: []barrage.Header{{Name: "Content-Type", Value: "application/json"}},
			Body:    []byte(body),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps, errs := c.DoAll(ctx, reqs)
	for i := range reqs {
		var be *barrage.Error
		switch {
		case errs[i] == nil:
			r := resps[i]
			fmt.Printf("%d: HTTP %d in %v (ttfb %v, %d+%d tokens): %.80s\n", i, r.Status, r.Total,
				r.TTFB, r.PromptTokens, r.CompletionTokens, r.Body)
		case errors.Is(errs[i], barrage.ErrHTTP) && errors.As(errs[i], &be):
			fmt.Printf("%d: HTTP error %d: %.80s\n", i, be.HTTPStatus, be.Body)
		default:
			fmt.Printf("%d: %v\n", i, errs[i])
		}
	}
}
