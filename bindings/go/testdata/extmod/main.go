// A program in its own module outside the checkout, built by run_tests.sh
// with only the README's local-checkout recipe: one call through BaseURL.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func main() {
	c, err := barrage.New(barrage.Options{CAFile: os.Args[2], BaseURL: os.Args[1],
		Header: http.Header{"Content-Type": {"application/json"}}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, &barrage.Request{URL: "/v1/chat/completions",
		Body: []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)})
	if err != nil {
		log.Fatal(err)
	}
	if resp.Status != 200 || !strings.Contains(string(resp.Body), `"chat.completion"`) {
		log.Fatalf("unexpected answer %d %s", resp.Status, resp.Body)
	}
	fmt.Println("external module ok:", resp.Status, barrage.Version())
}
