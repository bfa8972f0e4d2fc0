package service

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/declare"
)

// Hooks are the behaviour no declaration says, by method: the token
// calls' effects on the response cache, and the call flows' rendering
// and parsing (flowHooks).
var Hooks = union(tokenHooks, flowHooks)

// union is the hooks of each map; a method is in one at most.
func union(ms ...map[string]declare.Hooks) map[string]declare.Hooks {
	out := map[string]declare.Hooks{}
	for _, m := range ms {
		for k, v := range m {
			if _, dup := out[k]; dup {
				panic("service: two sets of hooks for " + k)
			}
			out[k] = v
		}
	}
	return out
}

// tokenHooks are what the token calls do to the response cache:
// GetAuth's answer expires with its JWT; the token answers tell each
// token's expiry; deleting tokens revokes the cached answers to calls
// that carried them.
var tokenHooks = map[string]declare.Hooks{
	authv1.AuthService_GetAuth_FullMethodName: {Expires: func(resp proto.Message) time.Time {
		exp, ok := jwtExpiry(resp.(*authv1.GetAuthResponse).GetUser().GetToken())
		if !ok {
			return time.Time{}
		}
		return exp.Add(-expirySkew)
	}},
	authv1.TokenService_ListTokens_FullMethodName: {Tells: func(resp proto.Message, tell func(string, time.Time)) {
		for _, t := range resp.(*authv1.ListTokensResponse).GetTokens() {
			tellToken(t, tell)
		}
	}},
	authv1.TokenService_CreateToken_FullMethodName: {Tells: func(resp proto.Message, tell func(string, time.Time)) {
		tellToken(resp.(*authv1.CreateTokenResponse).GetToken(), tell)
	}},
	authv1.TokenService_UpdateToken_FullMethodName: {Tells: func(resp proto.Message, tell func(string, time.Time)) {
		tellToken(resp.(*authv1.UpdateTokenResponse).GetToken(), tell)
	}},
	authv1.TokenService_DeleteToken_FullMethodName: {Revokes: func(req proto.Message) (string, bool) {
		tok := req.(*authv1.DeleteTokenRequest).GetToken()
		// Refused by validation; should one ever reach Opentact's path,
		// it names every token.
		return tok, isReservedPathWord(tok)
	}},
	authv1.TokenService_DeleteAllTokens_FullMethodName: {Revokes: func(proto.Message) (string, bool) { return "", true }},
}

// reservedPathWords are the words that, where Opentact's path takes a
// token (/rest/token/{token}), name other calls instead: GET
// /rest/token/list, DELETE /rest/token/all.
var reservedPathWords = []string{"all", "list"}

// isReservedPathWord reports whether v is a reserved path word in any
// letter case (strings.EqualFold, as the (?i) of DeleteTokenRequest.token's
// rule in token.proto, which refuses them: TestReservedPathWords keeps the
// two in agreement).
func isReservedPathWord(v string) bool {
	return slices.ContainsFunc(reservedPathWords, func(w string) bool { return strings.EqualFold(v, w) })
}

// tellToken tells t's expiry, less the skew as for a JWT, when its answer
// has both the token and it.
func tellToken(t *authv1.Token, tell func(string, time.Time)) {
	if t.GetToken() != "" && t.GetExpiredOn() != nil {
		tell(t.GetToken(), t.GetExpiredOn().AsTime().Add(-expirySkew))
	}
}

// expirySkew: an answer is dropped this long before the JWT in it, or the
// API token its call carried, expires, so that a caller is never handed a
// credential about to die in flight, nor one that Opentact's clock, a
// little ahead of ours, has already seen die.
const expirySkew = 5 * time.Second

// jwtExpiry reads the "exp" claim of a JWT, without checking its
// signature (the facade has no key; the claim only shortens caching).
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || secs > 1<<40 {
		return time.Time{}, false
	}
	if secs <= 0 {
		// 1970 or before: long expired, so never cached (rather than
		// cached for the whole TTL as a token without exp would be).
		return time.Unix(0, 0), true
	}
	return time.Unix(int64(secs), 0), true
}
