package httpapi

import _ "embed"

// openapiJSON is the OpenAPI 3.1 document served at /openapi.json. It
// describes every route of the routes table; TestOpenAPIMatchesRoutes
// keeps the two in step.
//
//go:embed openapi.json
var openapiJSON []byte
