package client

// maxH2HeaderList bounds a response's header list (RFC 9113
// SETTINGS_MAX_HEADER_LIST_SIZE, which the HTTP/2 core advertises and
// enforces). x/net/http2's Transport default, 10 MB, let a server flooding
// CONTINUATION frames hold about 16 MB per connection (534 MB at -c 32);
// past this bound the core ends the connection instead. 256 KiB is far
// more than any real response header needs (Go's server accepts 1 MB of
// request header, nginx 32 KB by default).
const maxH2HeaderList = 256 << 10
