package service

import (
	"errors"
	"strings"
	"testing"

	"buf.build/go/protovalidate"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// caseVariants is every upper/lower-case spelling of the ASCII letters of w.
func caseVariants(w string) []string {
	out := []string{""}
	for _, r := range w {
		var next []string
		for _, p := range out {
			next = append(next, p+strings.ToLower(string(r)), p+strings.ToUpper(string(r)))
		}
		out = next
	}
	return out
}

// TestReservedPathWords: DeleteTokenRequest.token's rule in token.proto
// refuses exactly the values isReservedPathWord (the cache revocation's
// comparison) calls reserved, in every letter case, and DeleteToken's
// Revokes reads a reserved word as every token.
func TestReservedPathWords(t *testing.T) {
	t.Parallel()
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, w := range reservedPathWords {
		values = append(values, caseVariants(w)...)
	}
	reserved := len(values)
	values = append(values,
		// A Unicode case fold: strings.EqualFold and (?i) both fold ſ
		// (long s) to s; neither folds ı (dotless i) to i.
		"liſt", "LIſT",
		// Not reserved.
		"al", "alll", "lis", "lists", "allist", "all list", " all", "all ", "all\n", "\nlist", "a.ll", "all/", "list%20",
		"ALL-tokens", "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE", "ałl", "lıst")
	revokes := Hooks[authv1.TokenService_DeleteToken_FullMethodName].Revokes
	for i, val := range values {
		goSays := isReservedPathWord(val)
		if i < reserved && !goSays {
			t.Errorf("isReservedPathWord(%q) = false, want true", val)
		}
		err := v.Validate(&authv1.DeleteTokenRequest{Token: val})
		var verr *protovalidate.ValidationError
		if err != nil && !errors.As(err, &verr) {
			t.Fatalf("%q: %v", val, err)
		}
		protoSays := false
		if verr != nil {
			for _, viol := range verr.Violations {
				protoSays = protoSays || viol.Proto.GetRuleId() == "token.reserved_word"
			}
		}
		if protoSays != goSays {
			t.Errorf("%q: token.proto refuses it: %v; isReservedPathWord: %v", val, protoSays, goSays)
		}
		if tok, all := revokes(&authv1.DeleteTokenRequest{Token: val}); tok != val || all != goSays {
			t.Errorf("%q: DeleteToken revokes (%q, all %v), want (%q, all %v)", val, tok, all, val, goSays)
		}
	}
}
