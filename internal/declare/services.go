package declare

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Service is one gRPC service the facade serves: its name, and the
// registration of its REST routes on the gateway, which calls it through
// a connection.
type Service struct {
	Name    protoreflect.FullName
	Gateway func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error
}

// Serve names a service to serve, with its generated gateway
// registration and client constructor, such as
// Serve(authv1.AuthService_ServiceDesc.ServiceName,
// authv1.RegisterAuthServiceHandlerClient, authv1.NewAuthServiceClient).
func Serve[C any](name string, register func(context.Context, *runtime.ServeMux, C) error, client func(grpc.ClientConnInterface) C) Service {
	return Service{
		Name: protoreflect.FullName(name),
		Gateway: func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return register(ctx, mux, client(cc))
		},
	}
}

// Descriptor is the service's descriptor, from the generated code
// linked into the binary.
func (s Service) Descriptor() (protoreflect.ServiceDescriptor, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(s.Name)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", s.Name, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", s.Name)
	}
	return sd, nil
}

// Declared reads the declaration of every method of services.
func Declared(services []Service) ([]*Call, error) {
	return each(services, Methods)
}

// Listed is every method of services, in order: each service's declared
// calls, then its local methods, then its streams.
func Listed(services []Service) ([]*Call, error) {
	return each(services, func(sd protoreflect.ServiceDescriptor) ([]*Call, error) {
		calls, err := Methods(sd)
		if err != nil {
			return nil, err
		}
		return slices.Concat(calls, Locals(sd), Streams(sd)), nil
	})
}

// each is what of gives for each of services, in order.
func each(services []Service, of func(protoreflect.ServiceDescriptor) ([]*Call, error)) ([]*Call, error) {
	var out []*Call
	for _, s := range services {
		sd, err := s.Descriptor()
		if err != nil {
			return nil, err
		}
		calls, err := of(sd)
		if err != nil {
			return nil, err
		}
		out = append(out, calls...)
	}
	return out, nil
}

// Streams are sd's server-streaming methods that no declaration serves
// (isStream), each as a Call of Kind Stream with only Method, FullMethod
// and REST set.
func Streams(sd protoreflect.ServiceDescriptor) []*Call { return undeclared(sd, Stream, isStream) }

// Locals are sd's unary methods that no declaration serves (isLocal),
// each as a Call of Kind Local with only Method, FullMethod and REST set.
func Locals(sd protoreflect.ServiceDescriptor) []*Call { return undeclared(sd, Local, isLocal) }

// undeclared are sd's methods that is reports, as Calls of kind.
func undeclared(sd protoreflect.ServiceDescriptor, kind Kind, is func(protoreflect.MethodDescriptor) bool) []*Call {
	var out []*Call
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		if is(md) {
			opts, _ := md.Options().(*descriptorpb.MethodOptions)
			out = append(out, &Call{Method: md, Kind: kind, FullMethod: fullMethod(md), REST: restRoute(opts)})
		}
	}
	return out
}

// Endpoints are the metric names of the declared calls of services, in
// order, each once.
func Endpoints(services []Service) ([]string, error) {
	calls, err := Declared(services)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range calls {
		if !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	return names, nil
}

// Hooks are the behaviour of a call that no declaration can say, written
// in Go and attached to its method by name. Each may be nil.
type Hooks struct {
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
	// Prepare, when set, turns a valid request into the one Opentact is
	// sent (a typed call flow rendered into its XML), or refuses it with
	// a status error (INVALID_ARGUMENT for any other error). It is handed
	// a copy: the caller's request, by which calls are shared and keyed,
	// stays as it came.
	Prepare func(req proto.Message) (proto.Message, error)
	// Answer, when set, completes an answer from what Opentact sent (the
	// typed call flow parsed from its XML) before it is shared or cached.
	Answer func(resp proto.Message)
}
