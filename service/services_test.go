package service_test

import (
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/engine"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/service"
)

// TestEveryServiceIsServed: every method of the listed services has a
// declaration the engine can serve, and every hook names a served method;
// a service added with a method that lacks a piece, or a hook left behind
// by a renamed method, fails here.
func TestEveryServiceIsServed(t *testing.T) {
	t.Parallel()
	client, err := upstream.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(client, service.Services, service.Hooks, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	descs := e.ServiceDescs()
	if len(descs) != len(service.Services) {
		t.Fatalf("%d services described, %d listed", len(descs), len(service.Services))
	}
	for i, d := range descs {
		if d.ServiceName != string(service.Services[i].Name) || len(d.Methods) == 0 {
			t.Errorf("service %d: %s with %d methods", i, d.ServiceName, len(d.Methods))
		}
	}
}

// TestAHookMustNameAServedMethod: the engine refuses hooks for a method it
// does not serve.
func TestAHookMustNameAServedMethod(t *testing.T) {
	t.Parallel()
	client, err := upstream.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	hooks := map[string]declare.Hooks{"/opentact.auth.v1.TokenService/RenameToken": {}}
	for name, h := range service.Hooks {
		hooks[name] = h
	}
	if _, err := engine.New(client, service.Services, hooks, engine.Options{}); err == nil {
		t.Error("a hook for a method that is not served was taken")
	}
}
