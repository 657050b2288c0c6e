'use strict'
// The shared vectors of tests/cases/ (format: tests/cases/README.md), run the way the Rust
// runner (tests/vectors.rs) runs them. Every vector is checked; a failing test lists every
// failing vector by name.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const rk = require('rewardkit')
const { FAST } = require('./helpers.js')

const CASES = path.join(__dirname, '..', 'cases')
const load = (file) => JSON.parse(fs.readFileSync(path.join(CASES, file), 'utf8'))

function finish(file, total, failures) {
  assert.ok(total > 0, `${file}: no vectors`)
  if (failures.length) {
    assert.fail(`${file}: ${failures.length} of ${total} vectors failed\n  - ${failures.join('\n  - ')}`)
  }
}

function checkNamesUnique(file, cases) {
  const seen = new Set()
  for (const c of cases) {
    assert.ok(!seen.has(c.name), `${file}: the name ${c.name} is used twice`)
    seen.add(c.name)
  }
}

function checkKeys(file, c, allowed) {
  for (const k of Object.keys(c)) assert.ok(allowed.includes(k), `${file}: ${c.name}: unknown key ${k}`)
}

/** Compares (key, code[, description]) item by item, in order. */
function fieldErrorsMatch(got, want) {
  const show = (list) => list.map((e) => `${e.key}/${e.code} (${JSON.stringify(e.description)})`).join(', ')
  if (got.length !== want.length) return `expected ${want.length} errors ${JSON.stringify(want)}, got ${got.length}: [${show(got)}]`
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [got[i], want[i]]
    const descOk = w.description === undefined || w.description === g.description
    if (g.key !== w.key || g.code !== w.code || !descOk) return `error #${i}: expected ${JSON.stringify(w)}, got [${show(got)}]`
  }
  return null
}

const camel = (k) => k.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())

// ------------------------------------------------------------------ reward_validation.json

const rewardCases = load('reward_validation.json')

test('reward_validation.json through validateReward (snake_case and camelCase)', () => {
  checkNamesUnique('reward_validation.json', rewardCases)
  assert.ok(rewardCases.length >= 30, 'at least 30 reward vectors')
  const failures = []
  for (const c of rewardCases) {
    checkKeys('reward_validation.json', c, ['name', 'payload', 'errors'])
    const why = fieldErrorsMatch(rk.validateReward(c.payload), c.errors)
    if (why) {
      failures.push(`${c.name}: ${why}`)
      continue
    }
    // The same reward written in camelCase validates the same (keys stay the vendor's).
    const p = c.payload
    if (p && typeof p === 'object' && !Array.isArray(p)) {
      const camelPayload = Object.fromEntries(Object.entries(p).map(([k, v]) => [camel(k), v]))
      const why2 = fieldErrorsMatch(rk.validateReward(camelPayload), c.errors)
      if (why2) failures.push(`${c.name} (camelCase): ${why2}`)
    }
  }
  finish('reward_validation.json', rewardCases.length, failures)
})

test('reward_validation.json through createReward against the sandbox', async () => {
  const sb = await rk.Sandbox.start()
  try {
    const sp = sb.splio(FAST)
    const failures = []
    for (const c of rewardCases) {
      sb.reset()
      let created
      let err
      try {
        created = await sp.createReward(c.payload)
      } catch (e) {
        err = e
      }
      if (c.errors.length === 0) {
        if (err) {
          failures.push(`${c.name}: a valid reward was refused: ${err.name}: ${err.message}`)
        } else if (created.externalId !== c.payload.external_id || sb.rewards().length !== 1) {
          failures.push(`${c.name}: created ${created.externalId}, sandbox holds ${sb.rewards().length}`)
        }
      } else if (err instanceof rk.ValidationError) {
        const why = fieldErrorsMatch(err.errors, c.errors)
        if (why) failures.push(`${c.name}: ${why}`)
        if (sb.requestCount('splio_create_reward') !== 0) failures.push(`${c.name}: an invalid reward reached the server`)
      } else {
        failures.push(`${c.name}: expected a ValidationError, got ${err ? `${err.name}: ${err.message}` : 'success'}`)
      }
    }
    finish('reward_validation.json (over HTTP)', rewardCases.length, failures)
  } finally {
    await sb.close()
  }
})

// ------------------------------------------------------------------ points_validation.json

test('points_validation.json through validateRows and awardPoints', async () => {
  const cases = load('points_validation.json')
  checkNamesUnique('points_validation.json', cases)
  const sb = await rk.Sandbox.start()
  try {
    const failures = []
    for (const c of cases) {
      checkKeys('points_validation.json', c, ['name', 'rows', 'allow_duplicates', 'errors'])
      for (const e of c.errors) assert.deepEqual(Object.keys(e).sort(), ['code', 'key', 'row'], c.name)
      const got = rk.validateRows(c.rows, { allowDuplicates: c.allow_duplicates }).map((e) => ({
        row: e.row,
        key: e.key,
        code: e.code,
      }))
      const want = c.errors.map((e) => ({ row: e.row, key: e.key, code: e.code }))
      try {
        assert.deepEqual(got, want)
      } catch {
        failures.push(`${c.name}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`)
        continue
      }
      // Over HTTP: valid rows are all awarded; invalid ones never leave the client.
      sb.reset()
      const qp = sb.questionpro({ ...FAST, allowDuplicates: c.allow_duplicates })
      let result
      let err
      try {
        result = await qp.awardPoints(c.rows)
      } catch (e) {
        err = e
      }
      if (c.errors.length === 0) {
        if (err) {
          failures.push(`${c.name}: valid rows were refused: ${err.name}: ${err.message}`)
          continue
        }
        const wantTotal = c.rows.reduce((s, r) => s + r.points, 0)
        const gotTotal = Object.values(sb.ledger()).reduce((s, p) => s + p, 0)
        if (result.successCount !== c.rows.length || gotTotal !== wantTotal) {
          failures.push(`${c.name}: successCount ${result.successCount}, ledger total ${gotTotal}`)
        }
      } else if (err instanceof rk.ValidationError) {
        const fromErr = err.errors.map((e) => ({ row: e.row, key: e.key, code: e.code }))
        if (JSON.stringify(fromErr) !== JSON.stringify(want)) {
          failures.push(`${c.name}: the ValidationError holds ${JSON.stringify(fromErr)}`)
        }
        if (sb.requestCount('questionpro_points') !== 0) failures.push(`${c.name}: invalid rows reached the server`)
      } else {
        failures.push(`${c.name}: expected a ValidationError, got ${err ? `${err.name}: ${err.message}` : 'success'}`)
      }
    }
    finish('points_validation.json', cases.length, failures)
  } finally {
    await sb.close()
  }
})

// ------------------------------------------------------------------ error_bodies.json

const EXPECT_KEYS = ['class', 'status_code', 'request_id', 'error_id', 'message', 'errors', 'retry_after', 'requests']
const VECTOR_ROWS = [{ panelMemberID: 12345678, points: 100, comments: 'vector' }]
const VECTOR_REWARD = { external_id: 'vector-reward', name: 'Vector', holding_days: 0, nqp_value: 10, auto_generated: true }

/** A vector's `null` means absent: null or undefined. */
const value = (v) => (v === undefined ? null : v)

async function runErrorCase(c) {
  checkKeys('error_bodies.json', c, ['name', 'vendor', 'route', 'call', 'status', 'headers', 'body', 'times', 'max_retries', 'expect'])
  for (const k of Object.keys(c.expect)) if (!EXPECT_KEYS.includes(k)) return `unknown expect key ${k}`
  const pointsRoute = c.route === 'questionpro_points'
  const ok = pointsRoute
    ? c.vendor === 'questionpro' && c.call === 'award_points'
    : c.vendor === 'splio' && ['create_reward', 'get_reward'].includes(c.call)
  if (!ok) return `vendor ${c.vendor} / route ${c.route} / call ${c.call} do not go together`

  const sb = await rk.Sandbox.start()
  try {
    sb.inject(c.route, { status: c.status, body: c.body, headers: c.headers ?? {}, times: c.times ?? 1 })
    const opts = { ...FAST, maxRetries: c.max_retries ?? 0 }
    let call
    if (c.call === 'award_points') call = sb.questionpro(opts).awardPoints(VECTOR_ROWS)
    else if (c.call === 'create_reward') call = sb.splio(opts).createReward(VECTOR_REWARD)
    else if (c.call === 'get_reward') call = sb.splio(opts).getReward('vector-reward')
    else return `unknown call ${c.call}`
    let e
    try {
      await call
    } catch (err) {
      e = err
    }
    if (!e) return 'the call succeeded'
    if (!(e instanceof rk.RewardkitError)) return `not a RewardkitError: ${e}`

    const x = c.expect
    const problems = []
    const check = (what, want, got) => {
      if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`)
    }
    if ('class' in x) check('class', x.class, e.name)
    if ('class' in x && e.constructor !== rk[x.class]) problems.push(`constructor is ${e.constructor.name}`)
    if ('status_code' in x) check('status_code', x.status_code, value(e.statusCode))
    if ('request_id' in x) check('request_id', x.request_id, value(e.requestId))
    if ('error_id' in x) check('error_id', x.error_id, value(e.errorId))
    if ('message' in x) check('message', x.message, value(e instanceof rk.APIError ? e.message : null))
    if ('errors' in x) {
      const got = (e.errors ?? []).map((f) => ({ key: f.key, code: f.code, description: f.description }))
      check('errors', x.errors, got)
    }
    if ('retry_after' in x) check('retry_after', x.retry_after, value(e.retryAfter))
    if ('requests' in x) check('requests', x.requests, sb.requestCount(c.route))
    // Whatever the shape, a status error keeps the raw body.
    if (e instanceof rk.APIError && e.body !== c.body) {
      problems.push(`body: expected the raw body ${JSON.stringify(c.body)}, got ${JSON.stringify(e.body)}`)
    }
    return problems.length ? `${problems.join('; ')} [${e.name}: ${e.message}]` : null
  } finally {
    await sb.close()
  }
}

test('error_bodies.json through real HTTP exchanges', async () => {
  const cases = load('error_bodies.json')
  checkNamesUnique('error_bodies.json', cases)
  const failures = []
  for (const c of cases) {
    const why = await runErrorCase(c)
    if (why) failures.push(`${c.name}: ${why}`)
  }
  finish('error_bodies.json', cases.length, failures)
})
