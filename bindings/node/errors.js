'use strict'
// The error classes of rewardkit, and the one function that turns an error from the native
// layer into the right class.
//
//   RewardkitError
//   ├── ValidationError            .errors (client-side; nothing was sent)
//   ├── APIError                   .statusCode .requestId .errorId .errorName .docs .vendor .errors .body
//   │   ├── BadRequestError        400 (and other 4xx without a class of their own)
//   │   ├── AuthenticationError    401
//   │   ├── PermissionDeniedError  403
//   │   ├── NotFoundError          404
//   │   ├── RateLimitError         429  .retryAfter (seconds)
//   │   └── InternalServerError    5xx
//   ├── APIConnectionError         no answer; the request did not reach the server
//   │   └── APITimeoutError
//   └── OutcomeUnknownError        .cause .statusCode .requestId .body: sent, may or may not be applied
//
// The native layer names the class with the core's `Error::class_name()` and sends every
// field as JSON after TAG in the message (bindings/node/src/errors.rs).

const TAG = '\u0001rewardkit-error\u0001'

/** The base class of every error rewardkit raises. Also raised alone for a misconfiguration. */
class RewardkitError extends Error {
  /**
   * @param {string} message
   * @param {object} [fields]
   */
  constructor(message, fields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause })
  }
}

/** Bad input, caught before anything was sent. `errors` lists every problem. */
class ValidationError extends RewardkitError {
  constructor(message, fields = {}) {
    super(message, fields)
    this.errors = fieldErrors(fields.errors)
  }
}

/** The vendor answered with an error status. */
class APIError extends RewardkitError {
  constructor(message, fields = {}) {
    super(message, fields)
    this.statusCode = fields.statusCode ?? null
    this.requestId = fields.requestId ?? null
    this.errorId = fields.errorId ?? null
    this.errorName = fields.errorName ?? null
    this.docs = fields.docs ?? null
    this.vendor = fields.vendor ?? null
    this.errors = fieldErrors(fields.errors)
    this.retryAfter = fields.retryAfter ?? null
    // The raw answer (up to 64 KiB): kept, but not enumerable, so printing the error stays short.
    Object.defineProperty(this, 'body', {
      value: fields.body ?? null,
      enumerable: false,
      writable: true,
      configurable: true,
    })
  }
}

class BadRequestError extends APIError {}
class AuthenticationError extends APIError {}
class PermissionDeniedError extends APIError {}
class NotFoundError extends APIError {}
/** 429: too many requests (retries did not get past it), or a spent call quota. */
class RateLimitError extends APIError {}
class InternalServerError extends APIError {}

/** No answer could be had, and the request never reached the server: safe to send again. */
class APIConnectionError extends RewardkitError {}
/** Connecting timed out; the request never reached the server. */
class APITimeoutError extends APIConnectionError {}

/**
 * The request was sent and no definitive answer came: it may or may not have been applied.
 * `cause` says why: 'timeout', 'connection_lost', 'gateway' (a 502/504) or 'unreadable_body'.
 */
class OutcomeUnknownError extends RewardkitError {
  constructor(message, fields = {}) {
    super(message, fields)
    this.statusCode = fields.statusCode ?? null
    this.requestId = fields.requestId ?? null
    Object.defineProperty(this, 'body', {
      value: fields.body ?? null,
      enumerable: false,
      writable: true,
      configurable: true,
    })
  }
}

const CLASSES = {
  RewardkitError,
  ValidationError,
  APIError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  RateLimitError,
  InternalServerError,
  APIConnectionError,
  APITimeoutError,
  OutcomeUnknownError,
}

// `name` lives on each prototype (not on each error), so it is the class name even when the
// code is minified, and it does not show up twice when an error is printed.
for (const [name, cls] of Object.entries(CLASSES)) {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true, enumerable: false })
}

function fieldErrors(list) {
  if (!Array.isArray(list)) return []
  return list.map((e) => {
    const out = { key: String(e.key), code: String(e.code), description: String(e.description ?? '') }
    if (typeof e.row === 'number') out.row = e.row
    return out
  })
}

/**
 * The rewardkit error a native error stands for; any other error is returned unchanged.
 * @param {unknown} err
 * @returns {unknown}
 */
function fromNative(err) {
  if (!(err instanceof Error) || typeof err.message !== 'string' || !err.message.startsWith(TAG)) {
    return err
  }
  let p
  try {
    p = JSON.parse(err.message.slice(TAG.length))
  } catch {
    return err
  }
  const e = fromPayload(p)
  // The stack starts where rewardkit was called, not in this function.
  Error.captureStackTrace(e, fromNative)
  return e
}

/**
 * The rewardkit error of a payload object (`{class, message, ...fields}`), as the native layer
 * writes it after TAG, or in a bulk job's result.
 * @param {{ class: string, message: string }} p
 * @returns {RewardkitError}
 */
function fromPayload(p) {
  const Cls = Object.hasOwn(CLASSES, p.class) ? CLASSES[p.class] : RewardkitError
  const fields = { ...p }
  delete fields.class
  delete fields.message
  const e = new Cls(p.message, fields)
  Error.captureStackTrace(e, fromPayload)
  return e
}

module.exports = { ...CLASSES, fromNative, fromPayload, fieldErrors, TAG }
