package server

// GatewayOverGRPC makes the gateway call the gRPC server over an
// in-memory gRPC connection instead of in the process, for the benchmark
// that compares the two.
func GatewayOverGRPC(o *Options) { o.gatewayOverGRPC = true }
