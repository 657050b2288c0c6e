// What rewardkit costs over a plain HTTP call from Node.
//
// One small awardPoints call (2 rows) against the sandbox, made with rewardkit and with Node's
// built-in fetch (keep-alive, the same body and headers, the answer parsed as JSON); node:http
// with a keep-alive agent is measured too, as the floor of what Node itself can do. They run
// in rounds that alternate, so drift on a busy machine hits all alike. Prints the medians,
// the 90th percentiles and the ratios of the medians.
//
//   make bench-node          # or: npm ci && npm run build && node bench/node_overhead.mjs
//   ITERATIONS=5000 node bench/node_overhead.mjs
//
// The sandbox runs in this process, on rewardkit's tokio threads; both clients talk to it over
// loopback TCP. rewardkit's client-side pacing is off (the vendor's limit would otherwise be
// what is measured), and so are retries, which never happen against a healthy sandbox anyway.

import http from 'node:http'
import os from 'node:os'
import { Sandbox } from 'rewardkit'

const ITERATIONS = Number(process.env.ITERATIONS ?? 3000)
const ROUNDS = 10
const WARMUP = 300

const rows = [
  { panelMemberId: 12345678, points: 100, comments: 'bench' },
  { panelMemberId: 23456789, points: 50, comments: 'bench' },
]

const sb = await Sandbox.start()
const qp = sb.questionpro({ maxRetries: 0 })
const url = `${sb.url}/a/api/v2/micropanel/members/points`
// The wire body: what rewardkit sends (it writes `panelMemberID`).
const body = JSON.stringify(rows.map((r) => ({ panelMemberID: r.panelMemberId, points: r.points, comments: r.comments })))
const headers = { 'api-key': sb.questionproApiKey, 'content-type': 'application/json', accept: 'application/json' }

async function viaRewardkit() {
  const r = await qp.awardPoints(rows)
  if (r.successCount !== 2) throw new Error(`rewardkit: unexpected answer ${JSON.stringify(r)}`)
}

async function viaFetch() {
  const res = await fetch(url, { method: 'POST', headers, body, keepalive: true })
  const json = await res.json()
  if (!res.ok || json.response.successCount !== 2) throw new Error(`fetch: unexpected answer ${res.status}`)
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const target = new URL(url)

function viaHttp() {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers, agent },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('end', () => {
          const json = JSON.parse(text)
          if (res.statusCode !== 200 || json.response.successCount !== 2) reject(new Error(`http: unexpected answer ${res.statusCode}`))
          else resolve()
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function time(fn, n, out) {
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint()
    await fn()
    out.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]

// Warm up both paths (connections, JIT, allocator).
await time(viaRewardkit, WARMUP, [])
await time(viaFetch, WARMUP, [])
await time(viaHttp, WARMUP, [])

const samples = { rewardkit: [], fetch: [], 'node:http': [] }
const clients = { rewardkit: viaRewardkit, fetch: viaFetch, 'node:http': viaHttp }
const perRound = Math.ceil(ITERATIONS / ROUNDS)
for (let round = 0; round < ROUNDS; round++) {
  // Reset the sandbox's ledger and records so they do not grow through the run.
  sb.reset()
  const names = Object.keys(clients)
  const order = round % 2 === 0 ? names : names.reverse()
  for (const name of order) await time(clients[name], perRound, samples[name])
}
agent.destroy()
await sb.close()

const stats = {}
for (const [name, list] of Object.entries(samples)) {
  const s = [...list].sort((a, b) => a - b)
  stats[name] = { n: s.length, median: pct(s, 50), p90: pct(s, 90) }
}

console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'})`)
console.log(`awardPoints, 2 rows, against the in-process sandbox; ${ITERATIONS} calls each, ${ROUNDS} alternating rounds`)
console.log('client       calls   median (µs)   p90 (µs)')
for (const [name, s] of Object.entries(stats)) {
  console.log(`${name.padEnd(11)} ${String(s.n).padStart(6)}  ${s.median.toFixed(0).padStart(12)}  ${s.p90.toFixed(0).padStart(9)}`)
}
console.log(`ratio rewardkit / fetch (medians): ${(stats.rewardkit.median / stats.fetch.median).toFixed(2)}`)
console.log(`ratio rewardkit / node:http (medians): ${(stats.rewardkit.median / stats['node:http'].median).toFixed(2)}`)
