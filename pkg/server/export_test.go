package server

// WriteCert lets the external test package (which may import internal/lab,
// itself importing this package) share the self-signed certificate helper.
var WriteCert = writeCert

// CurlReusesH2C lets the external tests skip curl's h2c reuse bug.
var CurlReusesH2C = curlReusesH2C
