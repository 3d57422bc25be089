// The OpenAPI 3.0 description of the edge API, generated from the route table (api.js ROUTES)
// and the bundle's input fields (manifest.json "inputs"). Served at GET /openapi.json.

const ERROR = {
  type: "object",
  required: ["error", "field"],
  properties: {
    error: { type: "string", description: "what is wrong and how to fix it" },
    field: { type: "string", nullable: true, description: "the request field at fault, or null" },
    row: { type: "integer", description: "index of the offending row in a batch" },
    detail: { type: "string" },
  },
};
const MODEL = { type: "object", required: ["name", "version"], properties: { name: { type: "string" }, version: { type: "string" } } };

const errorResponse = (description) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
const jsonResponse = (description, ref) => ({ description, content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } } });

// A missing field may also be sent as "" (or null in a body): the feature spec's missing-value
// strategy applies.
const EMPTY = { type: "string", maxLength: 0 };

function fieldSchema(input, { rejectOutOfRange, inQuery }) {
  if (input.type === "number") {
    const s = { type: "number" };
    if (rejectOutOfRange && input.range) {
      if (Number.isFinite(input.range.min)) s.minimum = input.range.min;
      if (Number.isFinite(input.range.max)) s.maximum = input.range.max;
    }
    return { anyOf: [inQuery ? s : { ...s, nullable: true }, EMPTY] };
  }
  // Categorical: a string (a JSON number is accepted as an id in bodies).
  return inQuery ? { type: "string" } : { anyOf: [{ type: "string" }, { type: "number" }], nullable: true };
}

export function buildOpenApi({ routes, manifest, modelInfo, maxBodyBytes, maxBatchRows, batchKeyIsInput, rejectOutOfRange = false }) {
  const inputs = Array.isArray(manifest.inputs) ? manifest.inputs : [];
  const row = {
    type: "object",
    additionalProperties: false,
    properties: Object.fromEntries(inputs.map((i) => [i.name, fieldSchema(i, { rejectOutOfRange, inQuery: false })])),
  };
  const rowsBody = { type: "array", maxItems: maxBatchRows, items: { $ref: "#/components/schemas/Row" } };
  const requestBody = batchKeyIsInput
    ? { oneOf: [{ $ref: "#/components/schemas/Row" }, rowsBody] }
    : { oneOf: [{ $ref: "#/components/schemas/Row" }, rowsBody, { type: "object", required: ["rows"], additionalProperties: false, properties: { rows: rowsBody } }] };
  const answer = {
    type: "object",
    required: ["prediction", "probabilities"],
    properties: {
      prediction: { type: "string", enum: manifest.labels },
      probabilities: { type: "object", additionalProperties: { type: "number" } },
    },
  };
  const clientErrors = {
    400: errorResponse("a field is missing, unknown, malformed or out of range (\"field\" names it)"),
    413: errorResponse(`the request body is larger than ${maxBodyBytes} bytes`),
    405: errorResponse("method not allowed (see the Allow header)"),
    500: errorResponse("internal error"),
  };
  const operations = {
    "/predict": {
      get: {
        summary: "Predict one row given as query parameters",
        parameters: inputs.map((i) => ({ name: i.name, in: "query", required: false, schema: fieldSchema(i, { rejectOutOfRange, inQuery: true }) })),
        responses: { 200: jsonResponse("the prediction", "Prediction"), ...clientErrors },
      },
      post: {
        summary: `Predict one JSON row, an array of rows or {"rows": [...]} (at most ${maxBatchRows} rows, ${maxBodyBytes} bytes)`,
        requestBody: { required: true, content: { "application/json": { schema: requestBody } } },
        responses: { 200: { description: "one prediction, or {model, predictions} for a batch", content: { "application/json": { schema: { oneOf: [{ $ref: "#/components/schemas/Prediction" }, { $ref: "#/components/schemas/Batch" }] } } } }, ...clientErrors },
      },
    },
    "/health": { get: { summary: "Liveness and the served model", responses: { 200: jsonResponse("ok", "Health"), 405: clientErrors[405] } } },
    "/metadata": { get: { summary: "The bundle's model, task, labels and inputs", responses: { 200: jsonResponse("metadata", "Metadata"), 405: clientErrors[405] } } },
    "/openapi.json": { get: { summary: "This description", responses: { 200: { description: "OpenAPI 3.0 document", content: { "application/json": { schema: { type: "object" } } } }, 405: clientErrors[405] } } },
  };
  const paths = {};
  for (const [path, methods] of Object.entries(routes)) {
    const ops = operations[path];
    paths[path] = {};
    for (const m of methods) {
      const key = m.toLowerCase();
      if (ops[key]) paths[path][key] = ops[key];
      else if (key === "head") paths[path].head = { summary: `${ops.get.summary} (headers only)`, responses: { 200: { description: "headers of GET" }, 405: clientErrors[405] } };
    }
  }
  return {
    openapi: "3.0.3",
    info: { title: `${modelInfo.name} v${modelInfo.version} (kit edge runtime)`, version: modelInfo.version },
    paths,
    components: {
      schemas: {
        Error: ERROR,
        Row: row,
        Model: MODEL,
        Prediction: { ...answer, required: ["model", ...answer.required], properties: { model: { $ref: "#/components/schemas/Model" }, ...answer.properties } },
        Batch: { type: "object", required: ["model", "predictions"], properties: { model: { $ref: "#/components/schemas/Model" }, predictions: { type: "array", items: answer } } },
        Health: { type: "object", required: ["status", "model"], properties: { status: { type: "string", enum: ["ok"] }, model: { $ref: "#/components/schemas/Model" } } },
        Metadata: { type: "object", required: ["model", "kind", "task", "labels", "inputs"], properties: { model: { $ref: "#/components/schemas/Model" }, kind: { type: "string" }, task: { type: "string" }, labels: { type: "array", items: { type: "string" } }, inputs: { type: "array", items: { type: "object" } } } },
      },
    },
  };
}
