// Type definitions for rewardkit (Node). Hand-written; the generated native.d.ts describes the
// internal native layer only.

// ------------------------------------------------------------------------------- shared

/**
 * One problem with one field. `key` and `code` are the vendor's own (`external_id`,
 * `is_blank`, `panelMemberID`, `wrong_type`, ...); `row` is the 0-based index of the input row
 * when the error belongs to one row of many.
 */
export interface FieldError {
  key: string
  code: string
  description: string
  row?: number
}

/** At most `calls` requests per `perMs` milliseconds. */
export interface RateLimit {
  calls: number
  perMs: number
}

/** Options both clients take. Durations are in milliseconds. */
export interface TransportOptions {
  /** Limit for the whole request (connect, send, answer). Default 30000. */
  timeout?: number
  /** Limit for opening the connection. Default 10000. */
  connectTimeout?: number
  /** How many times a request may be re-sent when re-sending is safe. Default 3. */
  maxRetries?: number
  /** First backoff step and the largest one. Default {baseMs: 500, maxMs: 30000}. */
  backoff?: { baseMs: number; maxMs: number }
  /** Longest server-requested wait (Retry-After) the client sits out by itself. Default 120000. */
  maxRetryWait?: number
  /** Client-side pacing: the vendor's published limit by default; `false` (or `null`) turns it off. */
  rateLimit?: RateLimit | false | null
}

// ------------------------------------------------------------------------------- QuestionPro

export type Datacenter = 'com' | 'eu' | 'ca' | 'au' | 'ae' | 'sg'

export interface QuestionProOptions extends TransportOptions {
  /** The API key; default: the `QUESTIONPRO_API_KEY` environment variable. */
  apiKey?: string
  /** Default `'com'`. */
  datacenter?: Datacenter
  /** A full base URL (another region, a proxy, the sandbox). Wins over `datacenter`. */
  baseUrl?: string
  /** Allow one member on several rows of one submission (default: a `duplicate` error). */
  allowDuplicates?: boolean
}

/** A panel member id, in any of the accepted spellings. */
export type PanelMemberIdField =
  | { panelMemberId: number | bigint }
  | { panelMemberID: number | bigint }
  | { panel_member_id: number | bigint }

/**
 * One points row: `points` (negative deducts) for a panel member. The member id may be spelled
 * `panelMemberId`, the wire name `panelMemberID`, or `panel_member_id`; `comment` is an alias of
 * `comments`.
 */
export type PointsRow = PanelMemberIdField & {
  points: number | bigint
  comments?: string | null
  comment?: string | null
}

/** An item of the answer's `skipped` list. */
export interface SkippedItem {
  /** The item as QuestionPro sent it. */
  raw: unknown
  panelMemberId: number | null
  /** Index of the sent row this item refers to. */
  row: number | null
}

export interface AwardResult {
  successCount: number
  skipped: SkippedItem[]
  requestId: string | null
}

export declare class QuestionPro {
  /** @throws {RewardkitError} when no key is given or found, or an option is bad. */
  constructor(options?: QuestionProOptions)
  /** The base URL requests go to. */
  readonly baseUrl: string
  /**
   * Sends one points request. The rows are validated first: if any is bad, the promise
   * rejects with a {@link ValidationError} listing every problem, and nothing is sent.
   */
  awardPoints(rows: readonly PointsRow[]): Promise<AwardResult>
  /**
   * Awards points to every row of `rows` in one bulk job: validated, cut into batches of
   * `batchSize`, sent `concurrency` at a time through the client's pacer, every row ending with
   * exactly one {@link Outcome}. `rows` is an array, any iterable, or an async iterable (an
   * object-mode stream, an async generator); iterables are streamed, never held in memory.
   *
   * Resolves with the {@link BulkReport}, also when some rows failed or are unknown (see
   * `isComplete`) and when `signal` stopped the job (`stoppedBy.class === 'Interrupted'`).
   * Rejects with a {@link ValidationError} when `onInvalid` is `'stop'` and a row is bad (nothing
   * was sent); with the error's own class on a fatal error (401, 403, a spent quota or a rate
   * limit that retries did not get past, a journal that belongs to another job); with the
   * iterable's own error when it throws; with the callback's error when `onProgress` throws. Each
   * rejection carries the partial report as `.report`.
   */
  bulkAward(rows: BulkRows, options?: BulkAwardOptions): Promise<BulkReport>
  toJSON(): { baseUrl: string }
}

// ------------------------------------------------------------------------------- bulkAward

/** What became of one input row. */
export type Outcome = 'awarded' | 'skipped' | 'invalid' | 'rejected' | 'failed' | 'unknown'

/** The rows of a bulk job: an array, any iterable, or an async iterable of rows. */
export type BulkRows = Iterable<PointsRow> | AsyncIterable<PointsRow>

export interface BulkAwardOptions {
  /** Rows per request, 1 to 100000. Default 500. */
  batchSize?: number
  /** Requests in flight at once (all paced together), 1 to 64. Default 4. */
  concurrency?: number
  /**
   * `'stop'` (default): validate every row first and send nothing if one is bad (a one-shot
   * iterable is spooled to a temporary file meanwhile). `'send_valid'`: send the valid rows as
   * they are read, and report the invalid ones.
   */
  onInvalid?: 'stop' | 'send_valid'
  /** Allow one member on several rows. Default: the client's `allowDuplicates`. */
  allowDuplicates?: boolean
  /**
   * An SQLite file recording each chunk's state. Running the same job again with the same file
   * skips confirmed chunks, re-sends chunks that were not applied, and lists unknown chunks
   * instead of re-sending them. A journal of another input or other settings is refused.
   */
  journal?: string
  /** With `journal`: send again the chunks an earlier run left unknown (they may be awarded twice). */
  resendUnknown?: boolean
  /** Called after each chunk, and once more when the job ends (`chunk: null`), on the event loop. */
  onProgress?: (progress: BulkProgress) => void
  /** Aborting it stops the job cleanly: requests in flight finish and are recorded, nothing more is sent. */
  signal?: AbortSignal
}

/** Counts of rows per outcome. */
export interface BulkTotals {
  rows: number
  awarded: number
  skipped: number
  invalid: number
  rejected: number
  failed: number
  unknown: number
  /** Points of the awarded rows, added up. */
  pointsAwarded: number
}

/** The fate of one chunk (one request) of a bulk job. */
export interface ChunkReport {
  chunk: number
  /** Input index of its first and last row (invalid rows between them are not part of it). */
  firstRow: number
  lastRow: number
  rows: number
  /** The outcome of its rows that have none of their own (see `BulkReport.exceptions`). */
  outcome: Outcome
  /** The request id of the request that carried it. */
  requestId: string | null
  /** Why it was not awarded, in words. */
  message: string | null
  /** The vendor's field errors, for a rejected chunk. */
  errors: FieldError[]
  pointsAwarded: number
  /** Its outcome was recorded by an earlier run (read from the journal). */
  fromJournal: boolean
}

/** A row with an outcome of its own (invalid, skipped, or unknown by an inconsistent answer). */
export interface RowException {
  row: number
  outcome: Outcome
  panelMemberId: number | null
  points: number | null
  requestId: string | null
  message: string | null
  /** Field errors of an invalid row, each with `row`. */
  errors: FieldError[]
  /** The vendor's `skipped` item, for a skipped row. */
  skipped: unknown
}

/** The outcome of one input row, as `BulkReport.rows()` lists them. */
export interface RowOutcome {
  /** Index of the row in the input (0-based). */
  row: number
  outcome: Outcome
  requestId: string | null
  message: string | null
  errors: FieldError[]
}

/** Why a job stopped before sending every row: an error class, or `'Interrupted'` (the signal). */
export interface StoppedBy {
  class: string
  message: string
  statusCode: number | null
  requestId: string | null
}

/** Where a job stands, given to `onProgress`. */
export interface BulkProgress {
  /** Rows with an outcome so far. */
  rowsDone: number
  /** Rows in all, when known (an array, or after the validation pass of `'stop'` mode). */
  rowsTotal: number | null
  requests: number
  elapsedMs: number
  /** Rows per second so far. */
  rate: number
  /** Estimated time left, when the total is known. */
  etaMs: number | null
  totals: BulkTotals
  /** The chunk just recorded; `null` on the last call, made when the job ends. */
  chunk: ChunkReport | null
}

/**
 * The result of a bulk job. Every input row has exactly one outcome: its chunk's, or its own
 * entry in `exceptions`. `rows()` lists them all.
 */
export interface BulkReport {
  totals: BulkTotals
  /** Requests sent in this run. */
  requests: number
  /** Chunks in order. */
  chunks: ChunkReport[]
  /** Rows with an outcome of their own, in row order. */
  exceptions: RowException[]
  /** Rows read from the input. */
  rowsRead: number
  /** Chunks whose outcome came from the journal. */
  resumedChunks: number
  /** What stopped the job early, if anything did. */
  stoppedBy: StoppedBy | null
  /** True when every row was awarded or skipped by the vendor. */
  isComplete: boolean
  /** Chunks whose rows may or may not have been awarded: check before sending them again. */
  unknownChunks: ChunkReport[]
  elapsedMs: number
  /** Every row's outcome, in row order (rows a stopped job never read have none). */
  rows(): Generator<RowOutcome, void, undefined>
}

/** Every problem of every row, without sending anything; `[]` when all rows are good. */
export declare function validateRows(rows: readonly unknown[], options?: { allowDuplicates?: boolean }): FieldError[]

// ------------------------------------------------------------------------------- Splio

export interface SplioOptions extends TransportOptions {
  /** The API key; default: the `SPLIO_API_KEY` environment variable. */
  apiKey?: string
  /** Default `https://api.splio.com`. */
  baseUrl?: string
}

export type MonetaryType = 'percentage' | 'value'
export type ValidityIntervalType = 'days' | 'weeks' | 'months' | 'years'

/** A custom field of a reward. `id` is set by Splio in answers. */
export interface CustomField {
  id?: number | null
  name?: string | null
  value?: string | null
}

/**
 * A date: a `Date` (written in the process's local time) or a string `YYYY-MM-DD HH:MM:SS`.
 */
export type RewardDate = Date | string

/** A reward to create, in camelCase. `externalId`, `name`, `holdingDays` and `nqpValue` are required. */
export interface NewReward {
  externalId: string
  name: string
  holdingDays: number
  nqpValue: number
  autoGenerated?: boolean
  customFields?: CustomField[]
  description?: string
  forcedValidity?: boolean
  forcedValidityStart?: RewardDate
  forcedValidityEnd?: RewardDate
  imageUrl?: string
  limited?: boolean
  /** A whole number (Splio's create schema sends it as a string; either is accepted). */
  maxAttributionCount?: number | string
  monetary?: boolean
  monetaryType?: MonetaryType
  monetaryValue?: number
  richDescription?: string
  validityIntervalCount?: number
  validityIntervalType?: ValidityIntervalType
}

/** The same reward with Splio's own (snake_case) field names, also accepted. */
export interface NewRewardWire {
  external_id: string
  name: string
  holding_days: number
  nqp_value: number
  auto_generated?: boolean
  custom_fields?: CustomField[]
  description?: string
  forced_validity?: boolean
  forced_validity_start?: RewardDate
  forced_validity_end?: RewardDate
  image_url?: string
  limited?: boolean
  max_attribution_count?: number | string
  monetary?: boolean
  monetary_type?: MonetaryType
  monetary_value?: number
  rich_description?: string
  validity_interval_count?: number
  validity_interval_type?: ValidityIntervalType
}

/**
 * A reward as Splio returns it, in camelCase. Fields Splio left out are `null`; anything else
 * it returned (`id`, `stock`, ...) is kept, in camelCase too.
 */
export interface Reward {
  externalId: string
  name: string
  autoGenerated: boolean | null
  customFields: CustomField[]
  description: string | null
  forcedValidity: boolean | null
  forcedValidityStart: string | null
  forcedValidityEnd: string | null
  holdingDays: number | null
  imageUrl: string | null
  limited: boolean | null
  maxAttributionCount: number | null
  monetary: boolean | null
  monetaryType: MonetaryType | null
  monetaryValue: number | null
  nqpValue: number | null
  richDescription: string | null
  validityIntervalCount: number | null
  validityIntervalType: ValidityIntervalType | null
  [extra: string]: unknown
}

export declare class Splio {
  /** @throws {RewardkitError} when no key is given or found, or an option is bad. */
  constructor(options?: SplioOptions)
  readonly baseUrl: string
  /**
   * Creates a reward. It is validated first: if it breaks a rule, the promise rejects with a
   * {@link ValidationError} listing every problem, and nothing is sent.
   */
  createReward(reward: NewReward | NewRewardWire): Promise<Reward>
  /** Reads one reward by its external id. */
  getReward(externalId: string): Promise<Reward>
  toJSON(): { baseUrl: string }
}

/**
 * Every field error of a reward (camelCase or snake_case fields), synchronously and without
 * sending anything; `[]` when the reward is valid. Keys are Splio's own (`external_id`).
 */
export declare function validateReward(reward: unknown): FieldError[]

// ------------------------------------------------------------------------------- Sandbox

/** The sandbox's emulated endpoints. */
export type Route = 'questionpro_points' | 'splio_authenticate' | 'splio_create_reward' | 'splio_get_reward'

export interface SandboxOptions {
  /** Port on 127.0.0.1; default 0 (a free port). */
  port?: number
  /** The only QuestionPro key accepted. Default `sandbox-questionpro-key`. */
  questionproApiKey?: string
  /** The only Splio key accepted. Default `sandbox-splio-key`. */
  splioApiKey?: string
  /** How long an issued Splio token stays valid, in ms. Default one hour. */
  tokenTtl?: number
  /** Which panel members exist (others are skipped). Default ids 1 to 99999999. */
  members?: 'all' | { from: number; to: number } | number[]
  /**
   * Enforce rate limits: `true` for both vendors' published limits, or per vendor (`true`,
   * `false` or a {@link RateLimit}). Default: off.
   */
  rateLimits?: boolean | { questionpro?: boolean | RateLimit; splio?: boolean | RateLimit }
  /** How many recent requests are kept per route. Default 1000. */
  recordLimit?: number
}

/** What a faulted request gets instead of the normal answer. */
export interface Fault {
  /** Answer with this status (and the vendor's usual error body for it, unless `body` is set). */
  status?: number
  /** The raw answer body. */
  body?: string
  /** Extra answer headers. */
  headers?: Record<string, string> | Array<[string, string]>
  /** Adds `Retry-After: N` (seconds). */
  retryAfter?: number
  /** Wait this long (ms) before answering; a fault with only a delay answers normally. */
  delayMs?: number
  /** Default `'respond'`. */
  action?: 'respond' | 'drop_connection' | 'unreadable_body'
  /** Process the request normally (credit the ledger, create the reward) before the fault. */
  process?: boolean
  /** How many requests the fault applies to. Default 1. */
  times?: number
}

/** A request as the sandbox received it; secrets are replaced by `<redacted>`. */
export interface RecordedRequest {
  method: string
  /** With the query string, if there was one. */
  path: string
  /** Lower-case header names. */
  headers: Record<string, string>
  body: string
}

/** One credited points row. */
export interface Award {
  panelMemberId: number
  points: number
  comments: string | null
  /** The requestID the sandbox answered with. */
  requestId: string
}

export declare class Sandbox {
  private constructor()
  /** Starts a sandbox on 127.0.0.1. It never keeps the process alive. */
  static start(options?: SandboxOptions): Promise<Sandbox>
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly questionproApiKey: string
  readonly splioApiKey: string
  /** Whether `close()` was called. */
  readonly closed: boolean
  /** A QuestionPro client pointed at this sandbox (its key and URL, pacing off); `options` win. */
  questionpro(options?: QuestionProOptions): QuestionPro
  /** A Splio client pointed at this sandbox (its key and URL, pacing off); `options` win. */
  splio(options?: SplioOptions): Splio
  /** Queues a fault for the next `fault.times` requests to `route`. */
  inject(route: Route, fault?: Fault): void
  /** Removes every queued fault. */
  clearFaults(): void
  /** How many requests `route` received since start or reset (faulted ones included). */
  requestCount(route: Route): number
  /** The recent requests to `route`, oldest first. */
  requests(route: Route): RecordedRequest[]
  /** Points credited per panel member id. */
  ledger(): Record<string, number>
  /** Every credited row, in the order it was credited. */
  awards(): Award[]
  /** Every created reward. */
  rewards(): Reward[]
  /** Invalidates every Splio token issued so far; the next loyalty call answers 401. */
  revokeTokens(): void
  /** Clears the ledger, awards, rewards, faults, recorded requests and counters. */
  reset(): void
  /** Stops the server (requests in flight finish first). Calling it again does nothing. */
  close(): Promise<void>
  toJSON(): { url: string }
}

// ------------------------------------------------------------------------------- errors

/** The base class of every rewardkit error; raised alone for a misconfiguration. */
export declare class RewardkitError extends Error {
  constructor(message: string, fields?: { cause?: unknown })
  /** When `bulkAward` rejected: the partial report of the job. Not enumerable. */
  report?: BulkReport
}

/** Bad input, caught before anything was sent. */
export declare class ValidationError extends RewardkitError {
  constructor(message: string, fields?: { errors?: FieldError[] })
  /** Every problem, in input order. */
  errors: FieldError[]
}

export interface APIErrorFields {
  statusCode?: number | null
  requestId?: string | null
  errorId?: string | null
  errorName?: string | null
  docs?: string | null
  vendor?: 'questionpro' | 'splio' | null
  errors?: FieldError[]
  body?: string | null
  retryAfter?: number | null
}

/** The vendor answered with an error status. */
export declare class APIError extends RewardkitError {
  constructor(message: string, fields?: APIErrorFields)
  /** The HTTP status. */
  statusCode: number | null
  /** The vendor's request id (QuestionPro `requestID`, or a request-id header). */
  requestId: string | null
  /** The vendor's error id, as a string (QuestionPro `"1010"`). */
  errorId: string | null
  /** The vendor's error name (QuestionPro `"UNAUTHORIZED"`). */
  errorName: string | null
  /** QuestionPro's documentation link, when given. */
  docs: string | null
  vendor: 'questionpro' | 'splio' | null
  /** Field errors the vendor reported (Splio). */
  errors: FieldError[]
  /** The raw answer body (at most 64 KiB). Not enumerable, so printed errors stay short. */
  body: string | null
  /** Seconds the server asked to wait (Retry-After, Splio's rateLimit-reset), or null. */
  retryAfter: number | null
}

/** 400, and other 4xx without a class of their own. */
export declare class BadRequestError extends APIError {}
/** 401 (and Splio refusing the key). */
export declare class AuthenticationError extends APIError {}
/** 403 */
export declare class PermissionDeniedError extends APIError {}
/** 404 */
export declare class NotFoundError extends APIError {}
/** 429 that retries did not get past, or a spent call quota. See `retryAfter`. */
export declare class RateLimitError extends APIError {}
/** 5xx */
export declare class InternalServerError extends APIError {}

/** No answer could be had, and the request never reached the server: safe to send again. */
export declare class APIConnectionError extends RewardkitError {}
/** Connecting timed out; the request never reached the server. */
export declare class APITimeoutError extends APIConnectionError {}

/** Why an outcome is unknown. */
export type UnknownCause = 'timeout' | 'connection_lost' | 'gateway' | 'unreadable_body'

/**
 * The request was sent and no definitive answer came: it may or may not have been applied.
 * Check before sending it again.
 */
export declare class OutcomeUnknownError extends RewardkitError {
  constructor(
    message: string,
    fields?: { cause?: UnknownCause; statusCode?: number | null; requestId?: string | null; body?: string | null },
  )
  cause: UnknownCause
  /** The status, when one came (a 502/504, or a success with an unreadable body). */
  statusCode: number | null
  requestId: string | null
  /** The answer's body, when there was one. Not enumerable. */
  body: string | null
}
