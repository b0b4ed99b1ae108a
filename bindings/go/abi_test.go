// The Go side of the ABI mirror check: cgo's struct layouts, the option
// list and the status sentinels against tests/abi/abi_layout's JSON (env
// BARRAGE_ABI_LAYOUT, set by meson).
package barrage_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

type abiJSON struct {
	Version string `json:"version"`
	Structs map[string]struct {
		Size   uintptr `json:"size"`
		Align  uintptr `json:"align"`
		Fields map[string]struct {
			Offset uintptr `json:"offset"`
			Size   uintptr `json:"size"`
		} `json:"fields"`
	} `json:"structs"`
	Options map[string]struct {
		Number int    `json:"number"`
		Kind   string `json:"kind"`
	} `json:"options"`
	Status map[string]int `json:"status"`
}

func loadABI(t *testing.T) abiJSON {
	exe := os.Getenv("BARRAGE_ABI_LAYOUT")
	if exe == "" {
		exe = filepath.Join("..", "..", "build", "tests", "abi", "abi_layout")
	}
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatalf("%s: %v (set BARRAGE_ABI_LAYOUT; meson target abi_layout)", exe, err)
	}
	var a abiJSON
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestABIStructMirrors(t *testing.T) {
	a := loadABI(t)
	mine := barrage.ABIStructs()
	if len(a.Structs) != len(mine) {
		t.Errorf("abi_layout has %d structs, the binding %d", len(a.Structs), len(mine))
	}
	for name, want := range a.Structs {
		got, ok := mine[name]
		if !ok {
			t.Errorf("%s: not mirrored", name)
			continue
		}
		if got.Size != want.Size || got.Align != want.Align {
			t.Errorf("%s: size/align %d/%d, C says %d/%d", name, got.Size, got.Align, want.Size, want.Align)
		}
		for f, wf := range want.Fields {
			gf, ok := got.Fields[f]
			if !ok || gf.Offset != wf.Offset || gf.Size != wf.Size {
				t.Errorf("%s.%s: %+v (present %v), C says offset %d size %d", name, f, gf, ok, wf.Offset, wf.Size)
			}
		}
		for f := range got.Fields {
			if _, ok := want.Fields[f]; !ok {
				t.Errorf("%s.%s: in the binding, not in abi_layout", name, f)
			}
		}
	}
	if !strings.HasPrefix(barrage.Version(), strings.SplitN(a.Version, ".", 2)[0]+".") {
		t.Errorf("library %s, header %s", barrage.Version(), a.Version)
	}
}

func TestABIOptions(t *testing.T) {
	a := loadABI(t)
	opts := reflect.TypeOf(barrage.Options{})
	seen := map[string]bool{}
	for _, o := range barrage.OptionFields {
		seen[o.Name] = true
		w, ok := a.Options[o.Name]
		if !ok || w.Number != o.Number {
			t.Errorf("option %s: number %d, header says %d (present %v)", o.Name, o.Number, w.Number, ok)
		}
		if _, ok := opts.FieldByName(o.Field); !ok {
			t.Errorf("option %s: Options has no field %s", o.Name, o.Field)
		}
	}
	var missing []string
	for name := range a.Options {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("header options not exposed by the Go binding: %v", missing)
	}
}

func TestABIStatus(t *testing.T) {
	a := loadABI(t)
	sentinels := []*barrage.Error{barrage.ErrInvalid, barrage.ErrNoMem, barrage.ErrFull, barrage.ErrClosed,
		barrage.ErrTimeout, barrage.ErrCancelled, barrage.ErrDNS, barrage.ErrConnect, barrage.ErrTLS,
		barrage.ErrIO, barrage.ErrProtocol, barrage.ErrHTTP, barrage.ErrTooLarge, barrage.ErrBackend,
		barrage.ErrNotFound, barrage.ErrUnavailable}
	byName := map[string]int{}
	for _, s := range sentinels {
		byName[strings.TrimPrefix(s.Name, "BRG_")] = s.Status
	}
	for name, code := range a.Status {
		if name == "OK" || name == "E_OK" {
			if code != 0 {
				t.Errorf("%s = %d", name, code)
			}
			continue
		}
		got, ok := byName[name]
		if !ok || got != code {
			t.Errorf("status %s: sentinel %d (present %v), header says %d", name, got, ok, code)
		}
	}
	if len(byName) != len(a.Status)-2 {
		t.Errorf("%d sentinels, header has %d error statuses", len(byName), len(a.Status)-2)
	}
}
