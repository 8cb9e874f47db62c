// A small transformation, as hookd bench e2e --transform measures it:
// it reshapes the body, adds a header and renames the type.
function transform(event) {
  event.body = {
    id: event.body.id,
    kind: event.type,
    size: event.body.pad.length,
  };
  event.headers["x-transformed"] = "1";
  event.type = "bench.reshaped";
  return event;
}
