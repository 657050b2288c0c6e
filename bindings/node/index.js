'use strict'
// rewardkit for Node: a thin, idiomatic skin over the Rust core (napi-rs).
//
// Everything that does I/O returns a Promise and runs on the core's tokio runtime, never on
// the event loop. Every failure is one of the error classes of ./errors.js. Values go to the
// native layer as JSON text (see `encode`), so integers arrive exactly and the core applies
// every vendor rule itself.

const fs = require('node:fs')
const util = require('node:util')
const errors = require('./errors.js')

const { fromNative, fromPayload, fieldErrors } = errors

function loadNative() {
  try {
    return require('./native.js')
  } catch (cause) {
    const built = fs.readdirSync(__dirname).filter((f) => /^rewardkit\..*\.node$/.test(f))
    const how =
      'Build it from the repository root with `npm ci && npm run build` ' +
      '(needs a Rust toolchain, 1.85 or newer; `npm run build:debug` builds faster, unoptimized).'
    const what = built.length
      ? `rewardkit: the native addon (${built.join(', ')}) could not be loaded: ${cause && cause.message}. ${how}`
      : `rewardkit: the native addon is not built (no rewardkit.*.node in ${__dirname}). ${how}`
    const err = new Error(what, { cause })
    err.code = 'REWARDKIT_NATIVE_MISSING'
    throw err
  }
}

const native = loadNative()

// ---------------------------------------------------------------------------- helpers

const BIG = '\u0000rewardkit-bigint:'
const BIG_RE = /"\\u0000rewardkit-bigint:(-?\d+)"/g

/**
 * `value` as JSON text for the native layer, read the way JSON.stringify reads it (undefined
 * and functions are left out, `toJSON` is honoured) with three differences: a `Date` is
 * written `YYYY-MM-DD HH:MM:SS` in local time (the vendor's format), a `BigInt` is written as
 * its exact digits, and NaN / Infinity become a value no field accepts (so the core reports a
 * `wrong_type` instead of a missing value).
 */
function encode(value) {
  let big = false
  const text = JSON.stringify(value === undefined ? null : value, function replacer(key, v) {
    const raw = this[key]
    if (raw instanceof Date) return formatDate(raw)
    if (typeof v === 'number') return Number.isFinite(v) ? v : { nonFiniteNumber: String(v) }
    if (typeof v === 'bigint') {
      big = true
      return BIG + v.toString()
    }
    return v
  })
  return big ? text.replace(BIG_RE, '$1') : text
}

/** `YYYY-MM-DD HH:MM:SS` in the process's local time zone. */
function formatDate(d) {
  if (Number.isNaN(d.getTime())) return 'Invalid Date'
  const p = (n) => String(n).padStart(2, '0')
  return (
    `${String(d.getFullYear()).padStart(4, '0')}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  )
}

/** Runs a synchronous native call, turning its error into the right class. */
function sync(fn) {
  try {
    return fn()
  } catch (e) {
    throw fromNative(e)
  }
}

function optionsObject(options, what) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${what} options must be an object`)
  }
  return options
}

function rowsArray(rows, what) {
  if (!Array.isArray(rows)) throw new TypeError(`${what}(rows): rows must be an array of row objects`)
  return rows
}

// ---------------------------------------------------------------------------- clients

/**
 * The QuestionPro client. Options: apiKey (default: QUESTIONPRO_API_KEY), datacenter ('com',
 * 'eu', 'ca', 'au', 'ae', 'sg'), baseUrl, timeout / connectTimeout / maxRetryWait (ms),
 * maxRetries, backoff {baseMs, maxMs}, rateLimit (false, or {calls, perMs}), allowDuplicates.
 * The key is kept in native memory only.
 */
class QuestionPro {
  #native

  constructor(options = {}) {
    const opts = optionsObject(options, 'QuestionPro')
    this.#native = sync(() => new native.QuestionPro(encode(opts)))
  }

  /** The base URL requests go to. */
  get baseUrl() {
    return this.#native.baseUrl
  }

  /**
   * Sends one points request. Rows are validated first; if any is bad, the promise rejects
   * with a ValidationError listing every problem and nothing is sent.
   */
  async awardPoints(rows) {
    const text = encode(rowsArray(rows, 'awardPoints'))
    let r
    try {
      r = await this.#native.awardPoints(text)
    } catch (e) {
      throw fromNative(e)
    }
    return {
      successCount: r.successCount,
      skipped: r.skipped.map((s) => ({ raw: s.raw, panelMemberId: s.panelMemberId, row: s.row })),
      requestId: r.requestId,
    }
  }

  /**
   * Awards points to every row of `rows` (an array, any iterable, or an async iterable such as
   * an object-mode stream), streamed through the core's bulk engine: validated, cut into
   * batches and sent several at a time; every row ends with one outcome. Resolves with a
   * BulkReport; a fatal error (401, 403, spent quota, a journal refused) rejects with its
   * class, carrying the partial report as `.report`. See bulkAward in index.d.ts.
   */
  async bulkAward(rows, options = {}) {
    const source = rowsSource(rows)
    const { onProgress, signal, ...settings } = optionsObject(options, 'bulkAward')
    if (onProgress != null && typeof onProgress !== 'function') {
      throw new TypeError('bulkAward: onProgress must be a function')
    }
    if (signal != null && (typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function')) {
      throw new TypeError('bulkAward: signal must be an AbortSignal')
    }
    const relay = onProgress == null ? null : new ProgressRelay(onProgress)
    const total = source.kind === 'array' ? rows.length : null
    const job = sync(() => this.#native.bulkJob(encode(settings), total, relay ? relay.deliver : null))
    // From here on the job must run to its end: it holds the progress function, which keeps
    // the process alive until the job releases it.
    const running = job.run().catch((e) => {
      throw fromNative(e)
    })
    const state = { done: false, sourceFailed: false, sourceError: undefined }
    const onAbort = () => job.cancel()
    try {
      if (relay) relay.job = job
      if (signal) {
        if (signal.aborted) job.cancel()
        else signal.addEventListener('abort', onAbort, { once: true })
      }
    } catch (e) {
      job.cancel() // the job ends at once: nothing was pushed
      await running.catch(() => {})
      throw e
    }
    // A failing iterable ends the job with its error instead (see feedRows).
    feedRows(job, source, state).catch(() => {})
    let out
    try {
      out = JSON.parse(await running)
    } finally {
      state.done = true
      if (signal) signal.removeEventListener('abort', onAbort)
    }
    // Progress calls still queued for the event loop are delivered before the result.
    if (relay) await relay.drain(out.progressCalls)
    const report = new BulkReport(out.report)
    if (!out.ok) {
      if (state.sourceFailed && out.error.class === 'RewardkitError' && out.error.message.includes(SOURCE_FAILED)) {
        throw withReport(state.sourceError, report)
      }
      throw withReport(fromPayload(out.error), report)
    }
    if (relay && relay.failed) throw withReport(relay.error, report)
    return report
  }

  toJSON() {
    return { baseUrl: this.baseUrl }
  }

  [util.inspect.custom](depth, opts, inspect) {
    return `QuestionPro { baseUrl: ${inspect(this.baseUrl, opts)} }`
  }
}

// ---------------------------------------------------------------------------- bulk

/** Rows per block pushed into a native bulk job (see bench/README.md, "bulkAward"). */
const BLOCK_ROWS = 512

/** The start of the message of the error a failing iterable ends a job with (bulk.rs). */
const SOURCE_FAILED = "the rows' iterable threw: "

// Plain JSON.stringify is much cheaper than `encode` and writes the same text, except for a
// BigInt (it throws), NaN or Infinity (it writes null) and a Date (it writes ISO text, ending
// `Z"`). A block whose text could hold one of those goes through `encode` instead.
const ISO_DATE = /"[+-]?\d{4,6}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/

/** A block of rows as JSON text, exactly as `encode` writes it. */
function encodeRows(block) {
  let text
  try {
    text = JSON.stringify(block)
  } catch {
    return encode(block)
  }
  return text.includes('null') || (text.includes('Z"') && ISO_DATE.test(text)) ? encode(block) : text
}

function rowsSource(rows) {
  if (Array.isArray(rows)) return { kind: 'array', rows }
  if (rows !== null && (typeof rows === 'object' || typeof rows === 'function')) {
    if (typeof rows[Symbol.asyncIterator] === 'function') return { kind: 'async', rows }
    if (typeof rows[Symbol.iterator] === 'function') return { kind: 'sync', rows }
  }
  throw new TypeError('bulkAward(rows): rows must be an array, an iterable or an async iterable of row objects')
}

/** Closes an iterator the job no longer reads (a stream is destroyed, a generator finishes). */
function closeIterator(it) {
  try {
    const r = typeof it.return === 'function' ? it.return() : undefined
    if (r && typeof r.then === 'function') r.then(undefined, () => {})
  } catch {
    // Closing is a courtesy; the job's result does not depend on it.
  }
}

/**
 * Pulls rows from `source` and pushes them into the native job in blocks of JSON text, each
 * push waiting for room in the job's bounded channel; then marks the end. Stops when the job
 * stops reading. Never rejects: when the iterable (or encoding a row) throws, the error is
 * kept in `state` and the job is told to stop with it.
 */
async function feedRows(job, source, state) {
  let it = null
  try {
    if (source.kind === 'array') {
      const rows = source.rows
      for (let i = 0; i < rows.length; i += BLOCK_ROWS) {
        if (state.done || !(await job.push(encodeRows(rows.slice(i, i + BLOCK_ROWS))))) return
      }
    } else {
      const isSync = source.kind === 'sync'
      it = isSync ? source.rows[Symbol.iterator]() : source.rows[Symbol.asyncIterator]()
      let block = []
      for (;;) {
        const r = isSync ? it.next() : await it.next()
        if (r.done) break
        block.push(r.value)
        if (block.length === BLOCK_ROWS) {
          const text = encodeRows(block)
          block = []
          if (state.done || !(await job.push(text))) return closeIterator(it)
        }
      }
      it = null
      if (block.length && !(await job.push(encodeRows(block)))) return
    }
    await job.end()
  } catch (e) {
    if (it) closeIterator(it)
    state.sourceFailed = true
    state.sourceError = e
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    await job.fail(message)
  }
}

/** `err` with the job's report attached as `.report` (not enumerable: reports are long). */
function withReport(err, report) {
  const e = err !== null && typeof err === 'object' && Object.isExtensible(err) ? err : new errors.RewardkitError(String(err), { cause: err })
  Object.defineProperty(e, 'report', { value: report, enumerable: false, writable: true, configurable: true })
  return e
}

/**
 * Hands the job's progress to the caller's callback. A callback that throws (or returns a
 * rejected promise) stops the job cleanly; bulkAward then rejects with that error.
 */
class ProgressRelay {
  constructor(onProgress) {
    this.onProgress = onProgress
    this.job = null
    this.received = 0
    this.failed = false
    this.error = undefined
    this.wanted = Infinity
    this.drained = null
    this.deliver = (p) => this.#deliver(p)
  }

  #deliver(text) {
    this.received++
    if (!this.failed) {
      try {
        const r = this.onProgress(JSON.parse(text))
        if (r && typeof r.then === 'function') r.then(undefined, (e) => this.#fail(e))
      } catch (e) {
        this.#fail(e)
      }
    }
    if (this.drained && this.received >= this.wanted) this.drained()
  }

  #fail(e) {
    if (this.failed) return
    this.failed = true
    this.error = e
    if (this.job) this.job.cancel()
  }

  /** Resolves once `calls` progress calls were delivered (the job has released the function,
   * which keeps the event loop alive until its queue is empty). */
  drain(calls) {
    if (this.received >= calls) return Promise.resolve()
    return new Promise((resolve) => {
      this.wanted = calls
      this.drained = resolve
    })
  }
}

/** Outcomes in the order of the core's `Outcome::ALL` (the chunk columns give an index). */
const OUTCOMES = ['awarded', 'skipped', 'invalid', 'rejected', 'failed', 'unknown']

/** The chunk objects of a report's chunk columns (see `ChunkColumns` in bulk.rs). */
function decodeChunks(c) {
  const errorsOf = new Map(c.errors)
  const fromJournal = new Set(c.fromJournal)
  const out = new Array(c.chunk.length)
  for (let i = 0; i < out.length; i++) {
    const m = c.message[i]
    out[i] = {
      chunk: c.chunk[i],
      firstRow: c.firstRow[i],
      lastRow: c.lastRow[i],
      rows: c.rows[i],
      outcome: OUTCOMES[c.outcome[i]],
      requestId: c.requestId[i],
      message: m === 0 ? null : c.messages[m - 1],
      errors: errorsOf.get(i) ?? [],
      pointsAwarded: c.pointsAwarded[i],
      fromJournal: fromJournal.has(i),
    }
  }
  return out
}

/**
 * The result of a bulk job: every input row has exactly one outcome, given by its chunk or
 * by its own entry in `exceptions`; `rows()` lists them all, in input order.
 */
class BulkReport {
  constructor(r) {
    const chunks = decodeChunks(r.chunks)
    this.totals = r.totals
    this.requests = r.requests
    this.chunks = chunks
    this.exceptions = r.exceptions
    this.rowsRead = r.rowsRead
    this.resumedChunks = r.resumedChunks
    this.stoppedBy = r.stoppedBy
    this.isComplete = r.isComplete
    this.unknownChunks = chunks.filter((c) => c.outcome === 'unknown')
    this.elapsedMs = r.elapsedMs
  }

  /** Every row's outcome, in row order: `{ row, outcome, requestId, message, errors }`. */
  *rows() {
    const { chunks, exceptions } = this
    let e = 0
    let c = 0
    for (let row = 0; row < this.rowsRead; row++) {
      while (e < exceptions.length && exceptions[e].row < row) e++
      const own = exceptions[e]
      if (own !== undefined && own.row === row) {
        yield { row, outcome: own.outcome, requestId: own.requestId, message: own.message, errors: own.errors }
        continue
      }
      while (c < chunks.length && chunks[c].lastRow < row) c++
      const k = chunks[c]
      // Rows of no chunk and no exception were never read (a cancelled job): they have no outcome.
      if (k !== undefined && k.firstRow <= row) {
        yield { row, outcome: k.outcome, requestId: k.requestId, message: k.message, errors: k.errors }
      }
    }
  }
}

/**
 * The Splio client. Options: apiKey (default: SPLIO_API_KEY), baseUrl, and the same transport
 * options as QuestionPro. It authenticates and renews its token itself; the key and the token
 * are kept in native memory only.
 */
class Splio {
  #native

  constructor(options = {}) {
    const opts = optionsObject(options, 'Splio')
    this.#native = sync(() => new native.Splio(encode(opts)))
  }

  get baseUrl() {
    return this.#native.baseUrl
  }

  /** Creates a reward (camelCase or snake_case fields; dates as Date or string). */
  async createReward(reward) {
    const text = encode(reward)
    try {
      return await this.#native.createReward(text)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Reads one reward by its external id. */
  async getReward(externalId) {
    if (typeof externalId !== 'string') throw new TypeError('getReward(externalId): externalId must be a string')
    try {
      return await this.#native.getReward(externalId)
    } catch (e) {
      throw fromNative(e)
    }
  }

  toJSON() {
    return { baseUrl: this.baseUrl }
  }

  [util.inspect.custom](depth, opts, inspect) {
    return `Splio { baseUrl: ${inspect(this.baseUrl, opts)} }`
  }
}

/** Every field error of a reward, synchronously and without sending anything ([] if valid). */
function validateReward(reward) {
  return fieldErrors(sync(() => native.validateReward(encode(reward))))
}

/** Every problem of every points row ([] if all are good), without sending anything. */
function validateRows(rows, options = {}) {
  const { allowDuplicates = false } = optionsObject(options, 'validateRows')
  const text = encode(rowsArray(rows, 'validateRows'))
  return fieldErrors(sync(() => native.validateRows(text, Boolean(allowDuplicates))))
}

// ---------------------------------------------------------------------------- sandbox

const PRIVATE = Symbol('rewardkit.Sandbox')

/**
 * The offline sandbox: both vendor APIs on 127.0.0.1, with fault injection and a ledger.
 * Start one with `await Sandbox.start(options)`; it never keeps the process alive, and
 * `await sb.close()` stops it.
 */
class Sandbox {
  #native

  constructor(token, handle) {
    if (token !== PRIVATE) throw new TypeError('use `await Sandbox.start(options)` to start a sandbox')
    this.#native = handle
  }

  /** Starts a sandbox on a free loopback port. */
  static async start(options = {}) {
    const text = encode(optionsObject(options, 'Sandbox'))
    try {
      return new Sandbox(PRIVATE, await native.startSandbox(text))
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** `http://127.0.0.1:PORT` */
  get url() {
    return this.#native.url
  }

  get questionproApiKey() {
    return this.#native.questionproApiKey
  }

  get splioApiKey() {
    return this.#native.splioApiKey
  }

  /** Whether close() was called. */
  get closed() {
    return this.#native.closed
  }

  /** A QuestionPro client for this sandbox (its key and URL, pacing off); `options` win. */
  questionpro(options = {}) {
    return new QuestionPro({
      apiKey: this.questionproApiKey,
      baseUrl: this.url,
      rateLimit: false,
      ...optionsObject(options, 'QuestionPro'),
    })
  }

  /** A Splio client for this sandbox (its key and URL, pacing off); `options` win. */
  splio(options = {}) {
    return new Splio({ apiKey: this.splioApiKey, baseUrl: this.url, rateLimit: false, ...optionsObject(options, 'Splio') })
  }

  /**
   * Queues a fault for the next `times` requests to `route`: {status, body, headers,
   * retryAfter (s), delayMs, action: 'respond' | 'drop_connection' | 'unreadable_body',
   * process, times}.
   */
  inject(route, fault = {}) {
    const text = encode(optionsObject(fault, 'fault'))
    sync(() => this.#native.inject(String(route), text))
  }

  clearFaults() {
    sync(() => this.#native.clearFaults())
  }

  /** How many requests `route` received since start or reset (faulted ones included). */
  requestCount(route) {
    return sync(() => this.#native.requestCount(String(route)))
  }

  /** The recent requests to `route`, oldest first, with secrets redacted. */
  requests(route) {
    return sync(() => this.#native.requests(String(route))).map((r) => ({
      method: r.method,
      path: r.path,
      headers: r.headers,
      body: r.body,
    }))
  }

  /** Points credited per panel member id: `{ '12345678': 100 }`. */
  ledger() {
    return sync(() => this.#native.ledger())
  }

  /** Every credited row, in order: `[{ panelMemberId, points, comments, requestId }]`. */
  awards() {
    return sync(() => this.#native.awards()).map((a) => ({
      panelMemberId: a.panelMemberId,
      points: a.points,
      comments: a.comments,
      requestId: a.requestId,
    }))
  }

  /** Every created reward, as getReward returns it. */
  rewards() {
    return sync(() => this.#native.rewards())
  }

  /** Invalidates every Splio token issued so far; the next loyalty call answers 401. */
  revokeTokens() {
    sync(() => this.#native.revokeTokens())
  }

  /** Clears the ledger, awards, rewards, faults, recorded requests and counters. */
  reset() {
    sync(() => this.#native.reset())
  }

  /** Stops the server (requests in flight finish first). Calling it again does nothing. */
  async close() {
    try {
      await this.#native.close()
    } catch (e) {
      throw fromNative(e)
    }
  }

  toJSON() {
    return { url: this.url }
  }

  [util.inspect.custom](depth, opts, inspect) {
    return `Sandbox { url: ${inspect(this.url, opts)}${this.closed ? ', closed: true' : ''} }`
  }
}

// ---------------------------------------------------------------------------- exports

const { TAG: _tag, fromNative: _fromNative, fromPayload: _fromPayload, fieldErrors: _fieldErrors, ...errorClasses } = errors

module.exports = {
  QuestionPro,
  Splio,
  Sandbox,
  validateReward,
  validateRows,
  ...errorClasses,
}
