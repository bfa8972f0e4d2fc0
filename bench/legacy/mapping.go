package legacy

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// The mapping from the payload types to the API's proto messages. Fields
// left unset stay unset; the messages point into the decoded payload.

func user(u *User) *authv1.User {
	if u == nil {
		return nil
	}
	return &authv1.User{
		Uuid:           optString(&u.UUID),
		Email:          optString(&u.Email),
		WssOnline:      optBool(&u.WSSOnline),
		Role:           optString(&u.Role),
		CreatedOn:      timestamp(&u.CreatedOn),
		ModifiedOn:     timestamp(&u.ModifiedOn),
		DeletedOn:      timestamp(&u.DeletedOn),
		Token:          optString(&u.Token),
		PhoneNumber:    optString(&u.PhoneNumber),
		Dob:            timestamp(&u.DOB),
		Avatar:         optString(&u.Avatar),
		FirstName:      optString(&u.FirstName),
		LastName:       optString(&u.LastName),
		Gender:         optString(&u.Gender),
		GmailUserId:    optString(&u.GmailUserID),
		FacebookUserId: optString(&u.FacebookUserID),
		AppleUserId:    optString(&u.AppleUserID),
		WechatUserId:   optString(&u.WechatUserID),
		Account:        account(u.Account.Value),
		OtherFields:    otherFields(&u.Carried),
	}
}

func account(a *Account) *authv1.Account {
	if a == nil {
		return nil
	}
	return &authv1.Account{
		Uuid:        optString(&a.UUID),
		Email:       optString(&a.Email),
		Name:        optString(&a.Name),
		Level:       optString(&a.Level),
		Balance:     optDecimal(&a.Balance),
		CreatedOn:   timestamp(&a.CreatedOn),
		ModifiedOn:  timestamp(&a.ModifiedOn),
		DeletedOn:   timestamp(&a.DeletedOn),
		Phone:       optString(&a.Phone),
		Address1:    optString(&a.Address1),
		Address2:    optString(&a.Address2),
		ZipCode:     optString(&a.ZipCode),
		City:        optString(&a.City),
		Class4Id:    optInt(&a.Class4ID),
		DisabledOn:  timestamp(&a.DisabledOn),
		WssOnline:   optBool(&a.WSSOnline),
		Admin:       user(a.Admin.Value),
		Users:       users(a.Users.Values),
		OtherFields: otherFields(&a.Carried),
	}
}

// token maps an Opentact token.
func token(t *Token) *authv1.Token {
	return &authv1.Token{
		Uuid:        optString(&t.UUID),
		Name:        optString(&t.Name),
		Token:       optString(&t.Token),
		Ttl:         optInt(&t.TTL),
		ExpiredOn:   timestamp(&t.ExpiredOn),
		CreatedOn:   timestamp(&t.CreatedOn),
		ModifiedOn:  timestamp(&t.ModifiedOn),
		User:        user(t.User.Value),
		OtherFields: otherFields(&t.Carried),
	}
}

func users(us []User) []*authv1.User {
	if len(us) == 0 {
		return nil
	}
	out := make([]*authv1.User, len(us))
	for i := range us {
		out[i] = user(&us[i])
	}
	return out
}

// otherFields is what Opentact sent that no field models; a dropped name
// (kept empty by the decoder) is left out.
func otherFields(c *Carried) map[string]string {
	if len(c.Other) == 0 {
		return nil
	}
	out := make(map[string]string, len(c.Other))
	for name, v := range c.Other {
		if v != "" {
			out[name] = string(v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func optString(s *String) *string {
	if !s.Valid {
		return nil
	}
	return &s.Value
}

func optDecimal(d *Decimal) *string {
	if !d.Valid {
		return nil
	}
	return &d.Value
}

func optBool(b *Bool) *bool {
	if !b.Valid {
		return nil
	}
	return &b.Value
}

func optInt[T int32 | int64](v *Integer[T]) *T {
	if !v.Valid {
		return nil
	}
	return &v.Value
}

func timestamp(t *Time) *timestamppb.Timestamp {
	if !t.Valid {
		return nil
	}
	ts := timestamppb.New(t.Value)
	if ts.CheckValid() != nil {
		return nil // year 0000: valid RFC 3339, but outside what a Timestamp holds
	}
	return ts
}
