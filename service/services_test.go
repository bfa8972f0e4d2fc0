package service_test

import (
	"maps"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/engine"
	"github.com/opentact-facade/opentact-facade/internal/events"
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
	hub := events.New(events.Options{})
	e, err := engine.New(client, service.Services, service.Hooks, engine.Options{Streams: service.Streams(hub, func(proto.Message) error { return nil }), Local: service.Local})
	if err != nil {
		t.Fatal(err)
	}
	descs := e.ServiceDescs()
	if len(descs) != len(service.Services) {
		t.Fatalf("%d services described, %d listed", len(descs), len(service.Services))
	}
	for i, d := range descs {
		if d.ServiceName != string(service.Services[i].Name) || len(d.Methods)+len(d.Streams) == 0 {
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

// TestAStreamNeedsItsHandler: the engine refuses to serve a streaming
// method without a handler, and a handler for a method it does not serve.
func TestAStreamNeedsItsHandler(t *testing.T) {
	t.Parallel()
	client, err := upstream.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(client, service.Services, service.Hooks, engine.Options{}); err == nil || !strings.Contains(err.Error(), "StreamEvents") {
		t.Errorf("no handler for StreamEvents: %v", err)
	}
	streams := service.Streams(events.New(events.Options{}), func(proto.Message) error { return nil })
	streams["/opentact.events.v1.EventService/Nothing"] = streams["/opentact.events.v1.EventService/StreamEvents"]
	if _, err := engine.New(client, service.Services, service.Hooks, engine.Options{Streams: streams, Local: service.Local}); err == nil || !strings.Contains(err.Error(), "Nothing") {
		t.Errorf("a handler for no method: %v", err)
	}
}

// TestALocalMethodNeedsItsHandler: a unary method with no upstream
// declaration (RenderCallFlow) is served only with a handler, and a
// handler must name such a method.
func TestALocalMethodNeedsItsHandler(t *testing.T) {
	t.Parallel()
	client, err := upstream.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	streams := service.Streams(events.New(events.Options{}), func(proto.Message) error { return nil })
	if _, err := engine.New(client, service.Services, service.Hooks, engine.Options{Streams: streams}); err == nil || !strings.Contains(err.Error(), "RenderCallFlow") {
		t.Errorf("no handler for RenderCallFlow: %v", err)
	}
	local := map[string]engine.LocalHandler{"/opentact.call.v1.CallControlService/Nothing": service.Local["/opentact.call.v1.CallControlService/RenderCallFlow"]}
	maps.Copy(local, service.Local)
	if _, err := engine.New(client, service.Services, service.Hooks, engine.Options{Streams: streams, Local: local}); err == nil || !strings.Contains(err.Error(), "Nothing") {
		t.Errorf("a local handler for no method: %v", err)
	}
}
