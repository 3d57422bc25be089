// Errors shared by every part of the runtime.

/**
 * A problem with what a request sent (HTTP 4xx material). `field` names the
 * offending request field, or is null when the problem is not about one field
 * (malformed JSON, body too large, batch too large...).
 */
export class RequestError extends Error {
  constructor(field, message, { status = 400, row = null } = {}) {
    super(message);
    this.name = "RequestError";
    this.field = field ?? null;
    this.status = status;
    this.row = row;
  }
}

/** A broken bundle or feature spec (a deployment problem, not a request problem). */
export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = "BundleError";
  }
}
