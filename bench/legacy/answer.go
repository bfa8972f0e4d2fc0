package legacy

import (
	"errors"

	"github.com/go-json-experiment/json/jsontext"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// envelope is Opentact's answer: {"success": true, "payload": ...}.
type envelope struct {
	Success Bool           `json:"success"` // not *bool: "success":"true" would decode as false
	Message String         `json:"message"`
	Payload jsontext.Value `json:"payload"`
}

// Envelope reads Opentact's answer body and returns its payload, nil when
// there is none (absent or null). An error is an answer the client
// refused: broken JSON, no boolean "success", or "success": false.
func Envelope(body []byte) ([]byte, error) {
	var env envelope
	err := decodeJSON(body, &env)
	switch {
	case env.Success.Valid && !env.Success.Value:
		return nil, errors.New("rejected")
	case err != nil:
		return nil, err
	case !env.Success.Valid:
		return nil, errors.New(`no boolean "success" field`)
	}
	if len(env.Payload) == 0 || string(env.Payload) == "null" {
		return nil, nil
	}
	return env.Payload, nil
}

func decodeAnswer[T any](body []byte) (*T, error) {
	payload, err := Envelope(body)
	if err != nil {
		return nil, err
	}
	out := new(T)
	if payload == nil {
		if _, empty := any(out).(*Empty); empty {
			return out, nil
		}
		return nil, errors.New(`no "payload"`)
	}
	if err := decodeJSON(payload, out); err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeAuth is GetAuth's answer from the body of GET /rest/auth.
func DecodeAuth(body []byte) (*authv1.GetAuthResponse, error) {
	u, err := decodeAnswer[User](body)
	if err != nil {
		return nil, err
	}
	return &authv1.GetAuthResponse{User: user(u)}, nil
}

// DecodeToken is the token of a token call's answer body.
func DecodeToken(body []byte) (*authv1.Token, error) {
	t, err := decodeAnswer[Token](body)
	if err != nil {
		return nil, err
	}
	return token(t), nil
}

// DecodeTokens is ListTokens' answer from the body of GET /rest/token/list.
func DecodeTokens(body []byte) (*authv1.ListTokensResponse, error) {
	ts, err := decodeAnswer[[]Token](body)
	if err != nil {
		return nil, err
	}
	resp := &authv1.ListTokensResponse{Tokens: make([]*authv1.Token, 0, len(*ts))}
	for i := range *ts {
		resp.Tokens = append(resp.Tokens, token(&(*ts)[i]))
	}
	return resp, nil
}

// DecodeEmpty is DeleteAllTokens' answer from the body of
// DELETE /rest/token/all.
func DecodeEmpty(body []byte) (*authv1.DeleteAllTokensResponse, error) {
	e, err := decodeAnswer[Empty](body)
	if err != nil {
		return nil, err
	}
	return &authv1.DeleteAllTokensResponse{OtherFields: otherFields(&e.Carried)}, nil
}

// DecodeAuthPayload is GetAuth's answer from the payload of GET
// /rest/auth's answer alone, the envelope already read.
func DecodeAuthPayload(payload []byte) (*authv1.GetAuthResponse, error) {
	u := new(User)
	if err := decodeJSON(payload, u); err != nil {
		return nil, err
	}
	return &authv1.GetAuthResponse{User: user(u)}, nil
}
