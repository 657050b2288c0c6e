'use strict'
// qp.bulkAward against the sandbox: arrays, iterables and async iterables; both onInvalid modes;
// faults injected mid-job; a fatal error; the journal; AbortSignal; a failing iterable; and the
// process exiting on its own afterwards. Every job is checked against the sandbox's ledger with
// the invariant of design.md point 1: every row has exactly one outcome, awarded rows are
// credited exactly once, unknown rows at most once, and every other row never.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Readable } = require('node:stream')
const rk = require('rewardkit')
const { FAST, runNode } = require('./helpers.js')

const POINTS = 'questionpro_points'
const OUTCOMES = ['awarded', 'skipped', 'invalid', 'rejected', 'failed', 'unknown']

/** Row `i` of a job: distinct members, points 1 to 7. */
const row = (i, base = 1_000_000) => ({ panelMemberId: base + i, points: 1 + (i % 7) })
const rows = (n, base) => Array.from({ length: n }, (_, i) => row(i, base))

async function* generate(n, base) {
  for (let i = 0; i < n; i++) yield row(i, base)
}

function* generateSync(n, base) {
  for (let i = 0; i < n; i++) yield row(i, base)
}

/** A promise and its resolve function. */
function gate() {
  let open
  const opened = new Promise((resolve) => (open = resolve))
  return { opened, open }
}

/**
 * The invariant of design.md point 1, checked against what the sandbox credited. `input` is the
 * rows as given (member ids); with `partial`, rows after the last one with an outcome were not
 * read and must not be credited.
 */
function checkExactlyOnce(report, input, sb, { partial = false } = {}) {
  const views = [...report.rows()]
  if (!partial) assert.equal(views.length, input.length, `every row has an outcome: ${JSON.stringify(report.totals)}`)
  views.forEach((v, i) => assert.equal(v.row, i, 'rows in order, each once'))
  const credited = new Map()
  for (const a of sb.awards()) credited.set(a.panelMemberId, (credited.get(a.panelMemberId) ?? 0) + 1)
  const idOf = (r) => r.panelMemberId ?? r.panelMemberID ?? r.panel_member_id
  for (const v of views) {
    assert.ok(OUTCOMES.includes(v.outcome), v.outcome)
    const n = credited.get(Number(idOf(input[v.row]))) ?? 0
    if (v.outcome === 'awarded') assert.equal(n, 1, `row ${v.row} awarded exactly once`)
    else if (v.outcome === 'unknown') assert.ok(n <= 1, `row ${v.row} unknown but credited ${n} times`)
    else assert.equal(n, 0, `row ${v.row} is ${v.outcome} but was credited`)
  }
  for (const r of input.slice(views.length)) assert.equal(credited.get(Number(idOf(r))), undefined, 'a row with no outcome was credited')
  const t = report.totals
  assert.equal(t.rows, views.length)
  assert.equal(OUTCOMES.reduce((sum, o) => sum + t[o], 0), views.length, JSON.stringify(t))
  const counted = Object.fromEntries(OUTCOMES.map((o) => [o, 0]))
  for (const v of views) counted[v.outcome]++
  for (const o of OUTCOMES) assert.equal(counted[o], t[o], `rows() and totals agree on ${o}`)
}

function tempJournal(name) {
  return path.join(os.tmpdir(), `rewardkit-node-${name}-${process.pid}-${Math.random().toString(16).slice(2)}.db`)
}

function removeJournal(p) {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(p + suffix, { force: true })
}

let sb
test.before(async () => {
  sb = await rk.Sandbox.start()
})
test.after(async () => {
  await sb.close()
})
test.beforeEach(() => sb.reset())

test('a clean job from an array awards every row once, with progress before the result', async () => {
  const qp = sb.questionpro(FAST)
  const input = rows(3_000)
  const seen = []
  let resolved = false
  const report = await qp.bulkAward(input, {
    batchSize: 100,
    concurrency: 4,
    onProgress: (p) => {
      assert.equal(resolved, false, 'progress comes before the result')
      seen.push(p)
    },
  })
  resolved = true
  assert.deepEqual(Object.keys(report), [
    'totals',
    'requests',
    'chunks',
    'exceptions',
    'rowsRead',
    'resumedChunks',
    'stoppedBy',
    'isComplete',
    'unknownChunks',
    'elapsedMs',
  ])
  assert.deepEqual(report.totals, {
    rows: 3000,
    awarded: 3000,
    skipped: 0,
    invalid: 0,
    rejected: 0,
    failed: 0,
    unknown: 0,
    pointsAwarded: input.reduce((s, r) => s + r.points, 0),
  })
  assert.equal(report.requests, 30)
  assert.equal(sb.requestCount(POINTS), 30)
  assert.equal(report.rowsRead, 3000)
  assert.equal(report.isComplete, true)
  assert.equal(report.stoppedBy, null)
  assert.deepEqual(report.exceptions, [])
  assert.deepEqual(report.unknownChunks, [])
  assert.equal(report.chunks.length, 30)
  const c = report.chunks[7]
  assert.deepEqual(Object.keys(c), ['chunk', 'firstRow', 'lastRow', 'rows', 'outcome', 'requestId', 'message', 'errors', 'pointsAwarded', 'fromJournal'])
  assert.deepEqual([c.chunk, c.firstRow, c.lastRow, c.rows, c.outcome, c.fromJournal], [7, 700, 799, 100, 'awarded', false])
  assert.equal(typeof c.requestId, 'string')
  checkExactlyOnce(report, input, sb)
  const [first] = report.rows()
  assert.deepEqual(first, { row: 0, outcome: 'awarded', requestId: report.chunks[0].requestId, message: null, errors: [] })

  // One progress call per chunk, then a last one (chunk null) when the job ends.
  assert.equal(seen.length, 31)
  assert.deepEqual(Object.keys(seen[0]), ['rowsDone', 'rowsTotal', 'requests', 'elapsedMs', 'rate', 'etaMs', 'totals', 'chunk'])
  assert.ok(seen.every((p, i) => i === 0 || p.rowsDone >= seen[i - 1].rowsDone))
  assert.ok(seen.every((p) => p.rowsTotal === 3000))
  assert.ok(seen.slice(0, -1).every((p) => p.chunk !== null))
  const last = seen.at(-1)
  assert.equal(last.chunk, null)
  assert.equal(last.rowsDone, 3000)
  assert.equal(last.totals.awarded, 3000)
  assert.ok(seen.some((p) => typeof p.etaMs === 'number' && p.rate > 0))
})

test('async generators, sync iterables and object-mode streams are streamed', async () => {
  const qp = sb.questionpro(FAST)
  // Default mode (stop): the one-shot input is validated in full, then sent.
  let report = await qp.bulkAward(generate(2_500), { batchSize: 500 })
  assert.equal(report.totals.awarded, 2_500)
  assert.equal(report.requests, 5)
  checkExactlyOnce(report, rows(2_500), sb)

  sb.reset()
  report = await qp.bulkAward(generateSync(1_234, 5_000_000), { batchSize: 200, concurrency: 2, onInvalid: 'send_valid' })
  assert.equal(report.totals.awarded, 1_234)
  assert.equal(report.requests, 7)
  checkExactlyOnce(report, rows(1_234, 5_000_000), sb)

  sb.reset()
  const stream = Readable.from(generateSync(3_000, 7_000_000))
  report = await qp.bulkAward(stream, { batchSize: 1_000 })
  assert.equal(report.totals.awarded, 3_000)
  assert.equal(stream.destroyed, true)
  checkExactlyOnce(report, rows(3_000, 7_000_000), sb)

  // Every spelling of the member id, comments, and values only `encode` writes exactly.
  sb.reset()
  const mixed = [
    { panelMemberID: 11, points: 1, comments: 'wire' },
    { panel_member_id: 12, points: -2, comment: 'alias' },
    { panelMemberId: 13n, points: 3n },
    { panelMemberId: 14, points: NaN },
    { panelMemberId: 15, points: 1, comments: null },
  ]
  report = await qp.bulkAward(mixed, { onInvalid: 'send_valid' })
  assert.deepEqual(
    report.exceptions.map((e) => [e.row, e.outcome, e.errors.map((x) => `${x.key}:${x.code}`).join()]),
    [[3, 'invalid', 'points:wrong_type']],
  )
  assert.deepEqual(sb.ledger(), { 11: 1, 12: -2, 13: 3, 15: 1 })
  assert.deepEqual(
    sb.awards().map((a) => a.comments),
    ['wire', 'alias', null, null],
  )
})

test("onInvalid 'stop' (the default) rejects with every bad row and sends nothing", async () => {
  const qp = sb.questionpro(FAST)
  const input = rows(3_000)
  input[17] = { panelMemberId: 'x', points: 1 }
  input[2_500] = { panelMemberId: 5, points: 0 }
  input[2_600] = { ...input[1] } // a duplicate
  for (const source of [input, (async function* () { yield* input })()]) {
    const err = await qp.bulkAward(source, { batchSize: 100 }).catch((e) => e)
    assert.ok(err instanceof rk.ValidationError, String(err))
    assert.deepEqual(
      err.errors.map((e) => [e.row, e.key, e.code]),
      [
        [17, 'panelMemberID', 'wrong_type'],
        [2500, 'points', 'wrong_value'],
        [2600, 'panelMemberID', 'duplicate'],
      ],
    )
    assert.ok(!Object.keys(err).includes('report'), 'the report is not enumerable')
    const { report } = err
    assert.equal(report.totals.invalid, 3)
    assert.equal(report.totals.rows, 3_000)
    assert.equal(report.requests, 0)
    assert.deepEqual(report.exceptions.map((e) => [e.row, e.outcome]), [[17, 'invalid'], [2500, 'invalid'], [2600, 'invalid']])
    assert.equal(sb.requestCount(POINTS), 0, 'nothing is sent')
  }
  // The client's allowDuplicates is the job's default; the job's option wins.
  const dup = [row(1), row(1)]
  assert.equal((await sb.questionpro({ ...FAST, allowDuplicates: true }).bulkAward(dup)).totals.awarded, 2)
  await assert.rejects(sb.questionpro({ ...FAST, allowDuplicates: true }).bulkAward(dup, { allowDuplicates: false }), rk.ValidationError)
})

test("onInvalid 'send_valid' sends the good rows and reports the bad ones", async () => {
  const qp = sb.questionpro(FAST)
  const input = rows(300)
  input[17] = { panelMemberId: 'x', points: 1 }
  input[18] = { panelMemberId: input[3].panelMemberId, points: 1 } // a duplicate
  input[250] = { panelMemberId: 123_456_789, points: 1 } // not in the sandbox's panel: skipped
  const report = await qp.bulkAward(input, { batchSize: 50, concurrency: 3, onInvalid: 'send_valid' })
  const t = report.totals
  assert.deepEqual([t.awarded, t.invalid, t.skipped], [297, 2, 1])
  assert.equal(report.isComplete, false)
  assert.deepEqual(
    report.exceptions.map((e) => [e.row, e.outcome, e.errors[0]?.code ?? null]),
    [
      [17, 'invalid', 'wrong_type'],
      [18, 'invalid', 'duplicate'],
      [250, 'skipped', null],
    ],
  )
  assert.equal(report.exceptions[2].panelMemberId, 123_456_789)
  assert.notEqual(report.exceptions[2].skipped, null)
  // Rows 17 and 18 name members that were credited by other rows: check the invariant on the rest.
  const checked = input.map((r, i) => (i === 17 || i === 18 ? { panelMemberId: -1 - i, points: 1 } : r))
  checkExactlyOnce(report, checked, sb)
})

test('faults injected mid-job: each row gets one honest outcome, and none is credited twice', async () => {
  // A read timeout well under the delay fault; tiny backoff so the retries are quick.
  const qp = sb.questionpro({ timeout: 1_000, maxRetries: 3, backoff: { baseMs: 10, maxMs: 50 } })
  const first = 2_000
  const n = 5_000
  const input = rows(n)
  // The second part of the input is held back until the faults are in, so they land mid-job.
  const injected = gate()
  async function* source() {
    for (let i = 0; i < first; i++) yield input[i]
    await injected.opened
    for (let i = first; i < n; i++) yield input[i]
  }
  let chunks = 0
  const report = await qp.bulkAward(source(), {
    batchSize: 100,
    concurrency: 4,
    onInvalid: 'send_valid',
    onProgress: (p) => {
      if (p.chunk && ++chunks === 3) {
        sb.inject(POINTS, { status: 429, retryAfter: 0, times: 3 })
        sb.inject(POINTS, { status: 503, times: 2 })
        sb.inject(POINTS, { status: 500 })
        sb.inject(POINTS, { status: 400 })
        sb.inject(POINTS, { action: 'drop_connection', process: true })
        sb.inject(POINTS, { delayMs: 2_500 })
        injected.open()
      }
    },
  })
  const t = report.totals
  assert.equal(t.failed, 100, `one chunk got the 500: ${JSON.stringify(t)}`)
  assert.equal(t.rejected, 100, `one chunk got the 400: ${JSON.stringify(t)}`)
  assert.equal(t.unknown, 200, `dropped after processing, read timeout: ${JSON.stringify(t)}`)
  assert.equal(t.awarded, n - 400)
  assert.equal(report.unknownChunks.length, 2)
  assert.ok(report.unknownChunks.every((c) => c.outcome === 'unknown' && typeof c.message === 'string'))
  const byOutcome = (o) => report.chunks.filter((c) => c.outcome === o)
  assert.equal(byOutcome('rejected').length, 1)
  assert.equal(byOutcome('failed').length, 1)
  assert.equal(typeof byOutcome('rejected')[0].message, 'string')
  // 50 chunks, plus the re-sends after 3 x 429 and 2 x 503; never a re-send after the rest.
  assert.equal(sb.requestCount(POINTS), 50 + 5)
  assert.equal(report.requests, 50)
  assert.equal(report.stoppedBy, null)
  checkExactlyOnce(report, input, sb)
})

test('a fatal 401 rejects with AuthenticationError carrying the partial report', async () => {
  const qp = sb.questionpro(FAST)
  const input = rows(2_000)
  // Faults apply in order: five requests go through (a delay of 0 answers normally), the sixth gets 401.
  sb.inject(POINTS, { delayMs: 0, times: 5 })
  sb.inject(POINTS, { status: 401 })
  const err = await qp.bulkAward(input, { batchSize: 100, concurrency: 1 }).catch((e) => e)
  assert.ok(err instanceof rk.AuthenticationError, String(err))
  assert.ok(err instanceof rk.APIError)
  assert.equal(err.statusCode, 401)
  const { report } = err
  assert.equal(report.stoppedBy.class, 'AuthenticationError')
  assert.equal(report.stoppedBy.statusCode, 401)
  assert.deepEqual([report.totals.awarded, report.totals.rejected, report.totals.failed], [500, 100, 1_400])
  assert.equal(sb.requestCount(POINTS), 6)
  assert.ok(report.chunks.slice(6).every((c) => c.outcome === 'failed' && c.message.startsWith('not sent')))
  checkExactlyOnce(report, input, sb)
})

test('a journal re-run sends only the chunks that did not go through, and lists the unknown one', async () => {
  const qp = sb.questionpro({ ...FAST, timeout: 2_000 })
  const input = rows(2_000)
  const journal = tempJournal('resume')
  try {
    const opts = { batchSize: 100, concurrency: 2, journal }
    sb.inject(POINTS, { delayMs: 0, times: 3 })
    sb.inject(POINTS, { status: 500 })
    sb.inject(POINTS, { action: 'drop_connection', process: true })
    const first = await qp.bulkAward(input, opts)
    assert.deepEqual([first.totals.failed, first.totals.unknown, first.totals.awarded], [100, 100, 1_800])
    assert.equal(sb.requestCount(POINTS), 20)

    // Same input, same journal: only the failed chunk goes out again.
    const second = await qp.bulkAward(input, opts)
    assert.equal(second.requests, 1)
    assert.equal(sb.requestCount(POINTS), 21)
    assert.equal(second.resumedChunks, 19)
    assert.deepEqual([second.totals.awarded, second.totals.unknown], [1_900, 100])
    assert.deepEqual(second.unknownChunks.map((c) => c.fromJournal), [true])
    checkExactlyOnce(second, input, sb)

    // A third run sends nothing; a different input is refused with the report attached.
    const third = await qp.bulkAward(input, opts)
    assert.equal(third.requests, 0)
    const other = input.map((r, i) => (i === 5 ? { ...r, points: 99 } : r))
    const err = await qp.bulkAward(other, opts).catch((e) => e)
    assert.equal(err.constructor, rk.RewardkitError)
    assert.match(err.message, /different input/)
    assert.equal(err.report.requests, 0)
    assert.equal(sb.requestCount(POINTS), 21)
  } finally {
    removeJournal(journal)
  }
})

test('an AbortSignal stops the job cleanly: chunks in flight finish, nothing more is sent', async () => {
  const qp = sb.questionpro(FAST)
  const input = rows(6_000)
  const ac = new AbortController()
  async function* source() {
    for (let i = 0; i < 3_000; i++) yield input[i]
    // Held until the abort: the job cannot end before it.
    await new Promise((resolve) => ac.signal.addEventListener('abort', resolve))
    for (let i = 3_000; i < input.length; i++) yield input[i]
  }
  let chunks = 0
  const report = await qp.bulkAward(source(), {
    batchSize: 100,
    concurrency: 2,
    onInvalid: 'send_valid',
    signal: ac.signal,
    onProgress: (p) => {
      if (p.chunk && ++chunks === 3) ac.abort()
    },
  })
  assert.equal(report.stoppedBy.class, 'Interrupted')
  const sent = sb.requestCount(POINTS)
  assert.ok(sent >= 3 && sent < 60, `stopped early (${sent} requests)`)
  assert.equal(report.totals.awarded, sent * 100, 'chunks in flight finished and were recorded')
  assert.ok([...report.rows()].every((v) => v.outcome === 'awarded'))
  checkExactlyOnce(report, input, sb, { partial: true })

  // A signal aborted beforehand sends nothing.
  sb.reset()
  const none = await qp.bulkAward(input, { signal: AbortSignal.abort() })
  assert.equal(none.stoppedBy.class, 'Interrupted')
  assert.equal(none.requests, 0)
  assert.equal(sb.requestCount(POINTS), 0)

  // An input that stalls does not hold up the stop (here in the validation pass of 'stop' mode).
  const stalled = new AbortController()
  async function* stalling() {
    yield row(1)
    setTimeout(() => stalled.abort(), 20)
    await new Promise(() => {}) // never resolves
  }
  const r = await qp.bulkAward(stalling(), { signal: stalled.signal })
  assert.equal(r.stoppedBy.class, 'Interrupted')
  assert.equal(sb.requestCount(POINTS), 0)
})

test('an iterable that throws, or an onProgress that throws, ends the job with that error and the report', async () => {
  const qp = sb.questionpro(FAST)
  const boom = new Error('the file went away')
  async function* failing() {
    for (let i = 0; i < 2_500; i++) yield row(i)
    throw boom
  }
  let err = await qp.bulkAward(failing(), { batchSize: 100, onInvalid: 'send_valid' }).catch((e) => e)
  assert.equal(err, boom)
  assert.ok(err.report.totals.awarded <= 2_500)
  checkExactlyOnce(err.report, rows(2_500), sb, { partial: true })
  // In 'stop' mode nothing was sent.
  sb.reset()
  err = await qp.bulkAward(failing(), { batchSize: 100 }).catch((e) => e)
  assert.equal(err, boom)
  assert.equal(sb.requestCount(POINTS), 0)

  sb.reset()
  const oops = new TypeError('bar.update is not a function')
  err = await qp
    .bulkAward(rows(5_000), {
      batchSize: 100,
      concurrency: 1,
      onProgress: () => {
        throw oops
      },
    })
    .catch((e) => e)
  assert.equal(err, oops)
  assert.equal(err.report.stoppedBy.class, 'Interrupted')
  checkExactlyOnce(err.report, rows(5_000), sb, { partial: true })
})

test('bad arguments: TypeError for the rows or callbacks, RewardkitError for options', async () => {
  const qp = sb.questionpro(FAST)
  for (const bad of [undefined, null, 5, 'rows', { panelMemberId: 1, points: 1 }]) {
    await assert.rejects(qp.bulkAward(bad), TypeError, String(bad))
  }
  await assert.rejects(qp.bulkAward([], { onProgress: 'yes' }), TypeError)
  await assert.rejects(qp.bulkAward([], { signal: {} }), TypeError)
  for (const bad of [{ batchSize: 0 }, { concurrency: 1000 }, { onInvalid: 'skip' }, { batchsize: 10 }, { journal: 5 }]) {
    await assert.rejects(qp.bulkAward([row(1)], bad), (e) => e.constructor === rk.RewardkitError, JSON.stringify(bad))
  }
  // An empty input is an empty report.
  const empty = await qp.bulkAward([])
  assert.equal(empty.totals.rows, 0)
  assert.equal(empty.requests, 0)
  assert.deepEqual([...empty.rows()], [])
})

test('a job in a worker thread, with progress, and the worker exits on its own', async () => {
  const { Worker } = require('node:worker_threads')
  const code = `
    const { parentPort } = require('node:worker_threads')
    const rk = require('rewardkit')
    ;(async () => {
      const sb = await rk.Sandbox.start()
      let calls = 0
      const r = await sb.questionpro().bulkAward(
        (function* () { for (let i = 1; i <= 1000; i++) yield { panelMemberId: i, points: 2 } })(),
        { batchSize: 100, onProgress: () => calls++ },
      )
      parentPort.postMessage({ awarded: r.totals.awarded, calls, ledger: Object.keys(sb.ledger()).length })
    })()
  `
  const w = new Worker(code, { eval: true })
  let message
  w.on('message', (m) => (message = m))
  const [exitCode] = await Promise.all([new Promise((resolve, reject) => w.on('exit', resolve).on('error', reject))])
  assert.equal(exitCode, 0)
  assert.deepEqual(message, { awarded: 1000, calls: 11, ledger: 1000 })
})

test('the process exits on its own after a job (progress, signal, a fatal error, the sandbox left open)', async () => {
  const script = `
    const rk = require('rewardkit')
    ;(async () => {
      const sb = await rk.Sandbox.start()
      const qp = sb.questionpro()
      const ac = new AbortController()
      let calls = 0
      async function* gen() { for (let i = 1; i <= 3000; i++) yield { panelMemberId: i, points: 1 } }
      const r = await qp.bulkAward(gen(), { batchSize: 100, signal: ac.signal, onProgress: () => calls++ })
      sb.inject('questionpro_points', { status: 401 })
      const e = await qp.bulkAward([{ panelMemberId: 9, points: 1 }], { onProgress: () => {} }).catch((e) => e)
      // Refused options never start the job, and leave nothing behind either.
      const bad = await qp.bulkAward([{ panelMemberId: 9, points: 1 }], { batchSize: 0, onProgress: () => {} }).catch((e) => e)
      console.log(r.totals.awarded, calls, e.name, e.report.totals.rejected, bad.name)
    })()
  `
  const r = await runNode(['-e', script])
  assert.equal(r.hung, false, 'the process did not exit on its own')
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.trim(), '3000 31 AuthenticationError 1 RewardkitError')
})
