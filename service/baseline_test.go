package service

import (
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// The decoding and mapping of GET /rest/auth as they were before the
// payload types carried unmodelled members (commit 9a1c878), kept as the
// baseline of BenchmarkMapping: the same JSON decoder and options, the
// fields of that time, every value copied into the message.

type baseUser struct {
	UUID           upstream.String `json:"uuid"`
	Email          upstream.String `json:"email"`
	WSSOnline      upstream.Bool   `json:"wss_online"`
	Role           upstream.String `json:"role"`
	CreatedOn      upstream.Time   `json:"created_on"`
	ModifiedOn     upstream.Time   `json:"modified_on"`
	DeletedOn      upstream.Time   `json:"deleted_on"`
	Token          upstream.String `json:"token"`
	PhoneNumber    upstream.String `json:"phone_number"`
	DOB            upstream.Time   `json:"dob"`
	Avatar         upstream.String `json:"avatar"`
	FirstName      upstream.String `json:"first_name"`
	LastName       upstream.String `json:"last_name"`
	Gender         upstream.String `json:"gender"`
	GmailUserID    upstream.String `json:"gmail_user_id"`
	FacebookUserID upstream.String `json:"facebook_user_id"`
	AppleUserID    upstream.String `json:"apple_user_id"`
	WechatUserID   upstream.String `json:"wechat_user_id"`
	Account        baseAccount     `json:"account"`
}

type baseAccount struct {
	Valid      bool             `json:"-"`
	UUID       upstream.String  `json:"uuid"`
	Email      upstream.String  `json:"email"`
	Name       upstream.String  `json:"name"`
	Level      upstream.String  `json:"level"`
	Balance    upstream.Decimal `json:"balance"`
	CreatedOn  upstream.Time    `json:"created_on"`
	ModifiedOn upstream.Time    `json:"modified_on"`
	DeletedOn  upstream.Time    `json:"deleted_on"`
}

func (a *baseAccount) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' {
		return dec.SkipValue()
	}
	type plain baseAccount
	var p plain
	if err := json.UnmarshalDecode(dec, &p); err != nil {
		return err
	}
	*a = baseAccount(p)
	a.Valid = true
	return nil
}

var baseOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

func baseDecode(body []byte) (*baseUser, error) {
	var env struct {
		Success upstream.Bool  `json:"success"`
		Payload jsontext.Value `json:"payload"`
	}
	if err := json.Unmarshal(body, &env, baseOptions); err != nil {
		return nil, err
	}
	u := new(baseUser)
	if err := json.Unmarshal(env.Payload, u, baseOptions); err != nil {
		return nil, err
	}
	return u, nil
}

func baseAuthResponse(u *baseUser) *authv1.GetAuthResponse {
	return &authv1.GetAuthResponse{User: &authv1.User{
		Uuid:           baseString(u.UUID),
		Email:          baseString(u.Email),
		WssOnline:      baseBool(u.WSSOnline),
		Role:           baseString(u.Role),
		CreatedOn:      timestamp(&u.CreatedOn),
		ModifiedOn:     timestamp(&u.ModifiedOn),
		DeletedOn:      timestamp(&u.DeletedOn),
		Token:          baseString(u.Token),
		PhoneNumber:    baseString(u.PhoneNumber),
		Dob:            timestamp(&u.DOB),
		Avatar:         baseString(u.Avatar),
		FirstName:      baseString(u.FirstName),
		LastName:       baseString(u.LastName),
		Gender:         baseString(u.Gender),
		GmailUserId:    baseString(u.GmailUserID),
		FacebookUserId: baseString(u.FacebookUserID),
		AppleUserId:    baseString(u.AppleUserID),
		WechatUserId:   baseString(u.WechatUserID),
		Account:        baseAccountMsg(u.Account),
	}}
}

func baseAccountMsg(a baseAccount) *authv1.Account {
	if !a.Valid {
		return nil
	}
	return &authv1.Account{
		Uuid:       baseString(a.UUID),
		Email:      baseString(a.Email),
		Name:       baseString(a.Name),
		Level:      baseString(a.Level),
		Balance:    baseDecimal(a.Balance),
		CreatedOn:  timestamp(&a.CreatedOn),
		ModifiedOn: timestamp(&a.ModifiedOn),
		DeletedOn:  timestamp(&a.DeletedOn),
	}
}

func baseString(s upstream.String) *string {
	if !s.Valid {
		return nil
	}
	return &s.Value
}

func baseDecimal(d upstream.Decimal) *string {
	if !d.Valid {
		return nil
	}
	return &d.Value
}

func baseBool(b upstream.Bool) *bool {
	if !b.Valid {
		return nil
	}
	return &b.Value
}
