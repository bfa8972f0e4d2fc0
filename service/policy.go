package service

import (
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// Policy is how the pipeline treats the calls of one method. A method
// without an entry is a write: never shared with another call, never
// cached (AIP-194).
type Policy struct {
	// Share lets identical calls under way at once (same method,
	// credentials and request) share one request to Opentact: reads only.
	Share bool
	// Cache keeps answers for --cache-ttl, when the cache is on: reads
	// whose answer stays true for a while only.
	Cache bool
	// Expires, when set, is when a cached answer stops being true (zero
	// if it does not say).
	Expires func(resp proto.Message) time.Time
	// Revokes names the API token a call revokes, or all of them, so that
	// no cached answer to a call carrying it is served once it has run.
	Revokes func(req proto.Message) (token string, all bool)
	// Tells hands tell each API token a successful answer shows, with
	// when an answer to a call carrying it stops being true (its
	// expired_on), so that no cached one is served past that.
	Tells func(resp proto.Message, tell func(token string, expires time.Time))
}

// policies are the entries of the methods that are not plain writes, and
// of the writes whose answers tell the cache something.
//
// ListTokens is shared but not cached: the list changes with every write
// of its user, through any credential or replica, and carries secrets.
var policies = map[string]Policy{
	authv1.AuthService_GetAuth_FullMethodName: {Share: true, Cache: true, Expires: func(resp proto.Message) time.Time {
		exp, ok := jwtExpiry(resp.(*authv1.GetAuthResponse).GetUser().GetToken())
		if !ok {
			return time.Time{}
		}
		return exp.Add(-expirySkew)
	}},
	authv1.TokenService_ListTokens_FullMethodName: {Share: true, Tells: func(resp proto.Message, tell func(string, time.Time)) {
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

// tellToken tells t's expiry, less the skew as for a JWT, when its answer
// has both the token and it.
func tellToken(t *authv1.Token, tell func(string, time.Time)) {
	if t.GetToken() != "" && t.GetExpiredOn() != nil {
		tell(t.GetToken(), t.GetExpiredOn().AsTime().Add(-expirySkew))
	}
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
