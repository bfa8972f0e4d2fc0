package sandbox

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// fixtureFiles are the data of the read-only collections: fixtures/rest/dict/tz.json
// holds the records of GET /rest/dict/tz (a JSON array), or the object a
// singleton read answers.
//
//go:embed fixtures
var fixtureFiles embed.FS

func embeddedFixtures() fs.FS {
	sub, err := fs.Sub(fixtureFiles, "fixtures")
	if err != nil {
		panic(err) // the directory is embedded
	}
	return sub
}

// loadFixtures reads every .json file of fsys, by collection path.
func loadFixtures(fsys fs.FS) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(name) != ".json" {
			return nil
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		b = bytes.TrimSpace(b)
		if !json.Valid(b) || (b[0] != '[' && b[0] != '{') {
			return fmt.Errorf("sandbox: fixture %s: want a JSON array or object", name)
		}
		out["/"+strings.TrimSuffix(name, ".json")] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
