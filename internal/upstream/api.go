package upstream

import "net/http"

// Opentact's Authentication API. Reads and deletes are idempotent
// (AIP-194); creating a token is not.
var (
	AuthEndpoint            = NewEndpoint[User]("auth", http.MethodGet, "/rest/auth", Idempotent())
	CreateTokenEndpoint     = NewEndpoint[Token]("token.create", http.MethodPost, "/rest/token")
	ListTokensEndpoint      = NewEndpoint[[]Token]("token.list", http.MethodGet, "/rest/token/list", Idempotent())
	UpdateTokenEndpoint     = NewEndpoint[Token]("token.update", http.MethodPatch, "/rest/token/{uuid}", Idempotent())
	DeleteTokenEndpoint     = NewEndpoint[Token]("token.delete", http.MethodDelete, "/rest/token/{token}", Idempotent(), SecretPath())
	DeleteAllTokensEndpoint = NewEndpoint[Empty]("token.delete_all", http.MethodDelete, "/rest/token/all", Idempotent())
)

// TokenCreate is the body of POST /rest/token; TTL is left out when nil.
type TokenCreate struct {
	Name string `json:"name"`
	TTL  *int32 `json:"ttl,omitempty"`
}

// TokenUpdate is the body of PATCH /rest/token/{uuid}: only the fields set.
type TokenUpdate struct {
	Name *string `json:"name,omitempty"`
	TTL  *int32  `json:"ttl,omitempty"`
}
