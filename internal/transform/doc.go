// Package transform holds what a subscription (or a source) may do to an
// event besides routing it by type:
//
//   - expression filters in CEL, filter_expr (cel.go), evaluated at
//     routing with a cost limit;
//   - enrichment from an HTTP API before delivery, enrich (enrich.go),
//     through the egress guard, cached;
//   - JavaScript transformations, transform (js.go), run in goja, a
//     JavaScript engine written in Go, sandboxed and bounded in time,
//     memory and size.
//
// docs/TRANSFORMATIONS.md and docs/FILTERS_AND_ENRICHMENT.md describe them
// for users.
package transform
