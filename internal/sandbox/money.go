package sandbox

import (
	"encoding/json"
	"math/big"
)

// parseMoney reads an amount written as a JSON number, exactly.
func parseMoney(raw json.RawMessage) (*big.Rat, bool) {
	n, ok := func() (json.Number, bool) { v, _ := decodeValue(raw); n, ok := v.(json.Number); return n, ok }()
	if !ok {
		return nil, false
	}
	return new(big.Rat).SetString(n.String())
}

// mustMoney is parseMoney of a literal of the sandbox's own.
func mustMoney(text string) *big.Rat {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		panic("sandbox: bad amount " + text)
	}
	return r
}

// moneyText writes an amount as a decimal with every digit it has and no
// more: 99.87895, 98.87495, 100. Amounts read from decimals and added or
// taken away stay finite decimals.
func moneyText(r *big.Rat) string {
	d := new(big.Int).Set(r.Denom())
	twos, fives := 0, 0
	two, five, rem := big.NewInt(2), big.NewInt(5), new(big.Int)
	for {
		q, m := new(big.Int).QuoRem(d, two, rem)
		if m.Sign() != 0 {
			break
		}
		d, twos = q, twos+1
	}
	for {
		q, m := new(big.Int).QuoRem(d, five, rem)
		if m.Sign() != 0 {
			break
		}
		d, fives = q, fives+1
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return r.FloatString(12) // not a finite decimal; never made here
	}
	return r.FloatString(max(twos, fives))
}
