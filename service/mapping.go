package service

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// authResponse is the one mapping from Opentact's GET /rest/auth payload to
// the API's proto messages. Fields Opentact left unset stay unset.
func authResponse(u *upstream.User) *authv1.GetAuthResponse {
	return &authv1.GetAuthResponse{User: &authv1.User{
		Uuid:           optString(u.UUID),
		Email:          optString(u.Email),
		WssOnline:      optBool(u.WSSOnline),
		Role:           optString(u.Role),
		CreatedOn:      timestamp(u.CreatedOn),
		ModifiedOn:     timestamp(u.ModifiedOn),
		DeletedOn:      timestamp(u.DeletedOn),
		Token:          optString(u.Token),
		PhoneNumber:    optString(u.PhoneNumber),
		Dob:            timestamp(u.DOB),
		Avatar:         optString(u.Avatar),
		FirstName:      optString(u.FirstName),
		LastName:       optString(u.LastName),
		Gender:         optString(u.Gender),
		GmailUserId:    optString(u.GmailUserID),
		FacebookUserId: optString(u.FacebookUserID),
		AppleUserId:    optString(u.AppleUserID),
		WechatUserId:   optString(u.WechatUserID),
		Account:        account(u.Account),
	}}
}

func account(a upstream.Account) *authv1.Account {
	if !a.Valid {
		return nil
	}
	return &authv1.Account{
		Uuid:       optString(a.UUID),
		Email:      optString(a.Email),
		Name:       optString(a.Name),
		Level:      optString(a.Level),
		Balance:    optDecimal(a.Balance),
		CreatedOn:  timestamp(a.CreatedOn),
		ModifiedOn: timestamp(a.ModifiedOn),
		DeletedOn:  timestamp(a.DeletedOn),
	}
}

func optString(s upstream.String) *string {
	if !s.Valid {
		return nil
	}
	return &s.Value
}

func optDecimal(d upstream.Decimal) *string {
	if !d.Valid {
		return nil
	}
	return &d.Value
}

func optBool(b upstream.Bool) *bool {
	if !b.Valid {
		return nil
	}
	return &b.Value
}

func timestamp(t upstream.Time) *timestamppb.Timestamp {
	if !t.Valid {
		return nil
	}
	ts := timestamppb.New(t.Value)
	if ts.CheckValid() != nil {
		return nil // year 0000: valid RFC 3339, but outside what a Timestamp holds
	}
	return ts
}

// token maps an Opentact token; fields Opentact left unset stay unset.
func token(t *upstream.Token) *authv1.Token {
	return &authv1.Token{
		Uuid:       optString(t.UUID),
		Name:       optString(t.Name),
		Token:      optString(t.Token),
		Ttl:        optInt32(t.TTL),
		ExpiredOn:  timestamp(t.ExpiredOn),
		CreatedOn:  timestamp(t.CreatedOn),
		ModifiedOn: timestamp(t.ModifiedOn),
	}
}

func optInt32(v upstream.Int32) *int32 {
	if !v.Valid {
		return nil
	}
	return &v.Value
}
