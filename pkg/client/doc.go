// Package client is kaload's keep-alive load engine: it keeps a fixed number of
// connections busy, redials when the server recycles one, and emits one Result
// per request saying which backend answered and on which connection.
package client
