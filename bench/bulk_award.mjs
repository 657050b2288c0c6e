// Bulk awarding from Node: rewardkit's `bulkAward` against the same job written the usual way,
// and rewardkit's memory as the input grows.
//
//   make bench-node                 # or: npm ci && npm run build && node bench/bulk_award.mjs
//   ROWS=100000 ROUNDS=5 STREAM_SIZES=100000,1000000,10000000 node bench/bulk_award.mjs
//
// 1. Throughput: 100,000 rows against the sandbox, pacing off, batches of 500, 8 in flight:
//    rewardkit `qp.bulkAward(array, { batchSize: 500, concurrency: 8 })` vs Node's built-in
//    `fetch` sending `Promise.all` groups of 8 requests of 500 rows (keep-alive, the answer
//    parsed and its successCount checked). Rounds alternate the order; medians are reported.
// 2. Memory: the peak RSS of `bulkAward` over rows streamed from an async generator (nothing
//    held in memory by the caller), for growing inputs, in the default `onInvalid: 'stop'` mode.
//
// Every run is a child process of its own, so its peak RSS is its own (the kernel's maxRSS, and
// `process.memoryUsage().rss` sampled every 10 ms). The sandbox runs in yet another process
// (`target/release/rewardkit sandbox --json`; `cargo build --release -p rewardkit-cli` builds
// it), so its ledger is not counted; it is reset (`POST /_sandbox/reset`) before every run, and
// every few seconds during the long streaming runs, where nobody reads the ledger. When `wrk`
// is on the PATH, it first measures what the sandbox serves on its own (same body, 8 connections).

import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')
const BATCH = 500
const CONCURRENCY = 8
const POINTS_PATH = '/a/api/v2/micropanel/members/points'

const row = (i) => ({ panelMemberId: i + 1, points: 1 + (i % 7), comments: 'bench' })

// ------------------------------------------------------------------------------- child side

/** Samples the RSS every 10 ms; `stop()` gives the peak in MiB (sampled and the kernel's). */
function rssSampler() {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 10)
  return {
    stop() {
      clearInterval(timer)
      peak = Math.max(peak, process.memoryUsage().rss)
      return { sampledPeakMiB: peak / 2 ** 20, maxRssMiB: process.resourceUsage().maxRSS / 1024 }
    },
  }
}

async function viaRewardkit(rows, { url, key }) {
  const { QuestionPro } = await import('rewardkit')
  const qp = new QuestionPro({ apiKey: key, baseUrl: url, rateLimit: false })
  const report = await qp.bulkAward(rows, { batchSize: BATCH, concurrency: CONCURRENCY })
  return { awarded: report.totals.awarded, requests: report.requests, complete: report.isComplete }
}

async function viaFetch(rows, { url, key }) {
  const endpoint = `${url}${POINTS_PATH}`
  const headers = { 'api-key': key, 'content-type': 'application/json', accept: 'application/json' }
  const send = async (batch) => {
    const body = JSON.stringify(batch.map((r) => ({ panelMemberID: r.panelMemberId, points: r.points, comments: r.comments })))
    const res = await fetch(endpoint, { method: 'POST', headers, body })
    const json = await res.json()
    if (!res.ok) throw new Error(`fetch: HTTP ${res.status}`)
    return json.response.successCount
  }
  let awarded = 0
  let requests = 0
  for (let i = 0; i < rows.length; i += BATCH * CONCURRENCY) {
    const group = []
    for (let j = i; j < Math.min(i + BATCH * CONCURRENCY, rows.length); j += BATCH) group.push(send(rows.slice(j, j + BATCH)))
    for (const n of await Promise.all(group)) awarded += n
    requests += group.length
  }
  return { awarded, requests, complete: awarded === rows.length }
}

async function* streamed(n) {
  for (let i = 0; i < n; i++) yield row(i)
}

async function child(mode, n, sandbox) {
  const rows = mode === 'stream' ? streamed(n) : Array.from({ length: n }, (_, i) => row(i))
  if (mode === 'rewardkit' || mode === 'stream') await import('rewardkit') // load the addon before measuring
  const baseRssMiB = process.memoryUsage().rss / 2 ** 20
  const sampler = rssSampler()
  const t0 = process.hrtime.bigint()
  const result = mode === 'fetch' ? await viaFetch(rows, sandbox) : await viaRewardkit(rows, sandbox)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const mem = sampler.stop()
  if (result.awarded !== n) throw new Error(`${mode}: awarded ${result.awarded} of ${n}`)
  console.log(JSON.stringify({ mode, n, seconds, rowsPerSec: n / seconds, baseRssMiB, ...mem, ...result }))
}

// ------------------------------------------------------------------------------- parent side

async function startSandbox() {
  const bin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'release', 'rewardkit')
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build it with \`cargo build --release -p rewardkit-cli\``)
  }
  const proc = spawn(bin, ['sandbox', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] })
  // Whatever happens to this process, the sandbox goes with it.
  process.on('exit', () => proc.kill('SIGKILL'))
  const lines = readline.createInterface({ input: proc.stdout })
  const [line] = await once(lines, 'line')
  lines.close()
  const info = JSON.parse(line)
  return { proc, url: info.url, key: info.questionpro_api_key }
}

async function reset(sandbox) {
  const res = await fetch(`${sandbox.url}/_sandbox/reset`, { method: 'POST' })
  if (!res.ok) throw new Error(`sandbox reset: HTTP ${res.status}`)
}

async function run(mode, n, sandbox, { resetEveryMs } = {}) {
  await reset(sandbox)
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, String(n)], {
    cwd: ROOT,
    env: { ...process.env, BENCH_SANDBOX: JSON.stringify({ url: sandbox.url, key: sandbox.key }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  // A long streaming run would grow the sandbox's ledger by gigabytes; nobody reads it there.
  const timer = resetEveryMs ? setInterval(() => reset(sandbox).catch(() => {}), resetEveryMs) : null
  let out = ''
  proc.stdout.on('data', (d) => (out += d))
  const [code] = await once(proc, 'close')
  if (timer) clearInterval(timer)
  if (code !== 0) throw new Error(`${mode} ${n}: exit code ${code}`)
  return JSON.parse(out.trim().split('\n').at(-1))
}

/** What the sandbox serves on its own: wrk, 8 connections, 500-row bodies, 5 s. */
function serverCeiling(sandbox) {
  if (spawnSync('wrk', ['--version']).error) return null
  const body = JSON.stringify(Array.from({ length: BATCH }, (_, i) => ({ panelMemberID: i + 1, points: 1, comments: 'bench' })))
  const script = path.join(os.tmpdir(), `rewardkit-wrk-${process.pid}.lua`)
  fs.writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\n` +
      `wrk.headers["content-type"] = "application/json"\nwrk.headers["api-key"] = ${JSON.stringify(sandbox.key)}\n`,
  )
  try {
    const r = spawnSync('wrk', ['-t2', '-c8', '-d5s', '-s', script, `${sandbox.url}${POINTS_PATH}`], { encoding: 'utf8' })
    const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout)
    return m ? Number(m[1]) : null
  } finally {
    fs.rmSync(script, { force: true })
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })

async function parent() {
  const n = Number(process.env.ROWS ?? 100_000)
  const rounds = Number(process.env.ROUNDS ?? 5)
  const sizes = (process.env.STREAM_SIZES ?? '100000,1000000,10000000').split(',').filter(Boolean).map(Number)
  const sandbox = await startSandbox()
  try {
    console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), load ${os.loadavg()[0].toFixed(1)}`)
    console.log(`sandbox: ${sandbox.url} (its own process)`)

    const rps = serverCeiling(sandbox)
    if (rps !== null) {
      console.log(`wrk, 8 connections, ${BATCH}-row requests: ${fmt(rps)} requests/s = ${fmt(rps * BATCH)} rows/s the sandbox serves`)
    }

    console.log(`\nThroughput: ${fmt(n)} rows, batch ${BATCH}, ${CONCURRENCY} in flight, pacing off; ${rounds} alternating rounds`)
    const results = { rewardkit: [], fetch: [] }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['rewardkit', 'fetch'] : ['fetch', 'rewardkit']
      for (const mode of order) {
        const res = await run(mode, n, sandbox)
        results[mode].push(res)
        console.log(
          `  round ${r + 1} ${mode.padEnd(9)} ${fmt(res.rowsPerSec).padStart(9)} rows/s  ${res.seconds.toFixed(3)} s  ` +
            `peak RSS ${fmt(res.maxRssMiB, 1)} MiB (sampled ${fmt(res.sampledPeakMiB, 1)}, before the job ${fmt(res.baseRssMiB, 1)})`,
        )
      }
    }
    const summary = {}
    for (const [mode, list] of Object.entries(results)) {
      summary[mode] = { rowsPerSec: median(list.map((x) => x.rowsPerSec)), maxRssMiB: median(list.map((x) => x.maxRssMiB)) }
      console.log(`  median ${mode.padEnd(9)} ${fmt(summary[mode].rowsPerSec).padStart(9)} rows/s  peak RSS ${fmt(summary[mode].maxRssMiB, 1)} MiB`)
    }
    console.log(`  ratio rewardkit / fetch (rows/s, medians): ${(summary.rewardkit.rowsPerSec / summary.fetch.rowsPerSec).toFixed(2)}`)

    console.log(`\nMemory: bulkAward over rows streamed from an async generator (onInvalid 'stop', batch ${BATCH}, ${CONCURRENCY} in flight)`)
    const peaks = []
    for (const size of sizes) {
      const res = await run('stream', size, sandbox, { resetEveryMs: size > 1_000_000 ? 5_000 : 0 })
      peaks.push(res)
      console.log(
        `  ${fmt(size).padStart(10)} rows  ${res.seconds.toFixed(1).padStart(6)} s  ${fmt(res.rowsPerSec).padStart(9)} rows/s  ` +
          `peak RSS ${fmt(res.maxRssMiB, 1)} MiB (sampled ${fmt(res.sampledPeakMiB, 1)}, before the job ${fmt(res.baseRssMiB, 1)})` +
          (peaks.length > 1 ? `  ${(res.maxRssMiB / peaks[0].maxRssMiB).toFixed(2)}x of ${fmt(sizes[0])}` : ''),
      )
    }
  } finally {
    sandbox.proc.kill('SIGTERM')
    await once(sandbox.proc, 'close')
  }
}

const argv = process.argv.slice(2)
if (argv[0] === '--child') {
  await child(argv[1], Number(argv[2]), JSON.parse(process.env.BENCH_SANDBOX))
} else {
  await parent()
}
