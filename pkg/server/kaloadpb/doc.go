// Package kaloadpb holds the kaload.v1 gRPC service that kaload serve
// --grpc-listen serves, generated from kaload.proto by protoc-gen-go and
// protoc-gen-go-grpc (go generate; the generated files are committed so
// that building kaload needs no protoc).
package kaloadpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative kaload.proto
