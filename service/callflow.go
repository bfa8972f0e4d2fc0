package service

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
	"github.com/opentact-facade/opentact-facade/internal/callflow"
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/engine"
)

// flowHooks send a call flow as Opentact takes it, the XML as a file,
// and read the typed flow back from the XML Opentact answers.
var flowHooks = map[string]declare.Hooks{
	callv1.CallControlService_SaveCallFlow_FullMethodName: {
		Prepare: func(req proto.Message) (proto.Message, error) {
			r := req.(*callv1.SaveCallFlowRequest)
			xml, err := flowXML(r.GetFlow(), r.GetXml())
			r.Source = &callv1.SaveCallFlowRequest_Xml{Xml: xml}
			return r, err
		},
		Answer: func(resp proto.Message) {
			r := resp.(*callv1.SaveCallFlowResponse)
			r.Flow = parsed(r.GetXml())
		},
	},
	callv1.CallControlService_ExecuteCallFlow_FullMethodName: {
		Prepare: func(req proto.Message) (proto.Message, error) {
			r := req.(*callv1.ExecuteCallFlowRequest)
			xml, err := flowXML(r.GetFlow(), r.GetXml())
			r.Source = &callv1.ExecuteCallFlowRequest_Xml{Xml: xml}
			return r, err
		},
	},
	callv1.CallControlService_GetCallFlow_FullMethodName: {
		Answer: func(resp proto.Message) {
			r := resp.(*callv1.GetCallFlowResponse)
			r.Flow = parsed(r.GetXml())
		},
	},
}

// Local are the methods the facade answers itself, by full method name.
var Local = map[string]engine.LocalHandler{
	callv1.CallControlService_RenderCallFlow_FullMethodName: func(_ context.Context, req proto.Message) (proto.Message, error) {
		xml, err := flowXML(req.(*callv1.RenderCallFlowRequest).GetFlow(), "")
		if err != nil {
			return nil, err
		}
		return &callv1.RenderCallFlowResponse{Xml: xml}, nil
	},
}

// flowXML is the XML to send for a flow given typed (rendered) or as XML
// (checked: well-formed, a <Response> root, known verbs). A fault is
// INVALID_ARGUMENT, its BadRequest naming the field and the line.
func flowXML(flow *callv1.CallFlow, xml string) (string, error) {
	field := "xml"
	var err error
	if flow != nil {
		field = "flow"
		var b []byte
		if b, err = callflow.Render(flow); err == nil {
			return string(b), nil
		}
	} else if err = callflow.Check([]byte(xml)); err == nil {
		return xml, nil
	}
	reason := "call_flow.invalid"
	if xe := (*callflow.Error)(nil); errors.As(err, &xe) {
		reason = "call_flow.xml"
	}
	st := status.New(codes.InvalidArgument, "invalid call flow: "+field+": "+err.Error())
	if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
		Field: field, Description: err.Error(), Reason: reason,
	}}}); derr == nil {
		st = d
	}
	return "", st.Err()
}

// parsed is the typed flow of xml, or nil where it does not parse as one
// (a verb the facade does not type): the XML is still answered.
func parsed(xml string) *callv1.CallFlow {
	if xml == "" {
		return nil
	}
	f, err := callflow.Parse([]byte(xml))
	if err != nil {
		return nil
	}
	return f
}
