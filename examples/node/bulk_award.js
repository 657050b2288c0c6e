// Awards points in bulk against the offline sandbox: bad rows caught before anything is sent, a
// streamed job with progress, a batch whose outcome is unknown, and a re-run from the journal.
//
//   npm ci && npm run build     # once, from the repository root
//   node examples/node/bulk_award.js
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Sandbox, ValidationError, RewardkitError } = require('rewardkit')

/** The rows, one at a time, as a database cursor or a queue would give them. */
async function* surveyCompletions(n) {
  for (let i = 1; i <= n; i++) yield { panelMemberId: 10_000 + i, points: 100, comments: 'Survey week 12' }
}

async function main() {
  const sb = await Sandbox.start()
  const journal = path.join(os.tmpdir(), `rewardkit-example-${process.pid}.db`)
  try {
    const qp = sb.questionpro()

    // 1. By default every row is validated first: one bad row, and nothing is sent.
    try {
      await qp.bulkAward([
        { panelMemberId: 1, points: 5 },
        { panelMemberId: 'abc', points: 5 },
        { panelMemberId: 3, points: 0 },
      ])
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e
      for (const fe of e.errors) console.log(`  row ${fe.row}: ${fe.key}: ${fe.code}`)
      console.log(`nothing sent: ${e.report.requests} requests`)
    }

    // 2. 5,000 rows, streamed, 4 batches in flight. The fourth request's connection drops after
    //    the server applied it: its 500 rows are "unknown", never silently re-sent.
    sb.inject('questionpro_points', { delayMs: 0, times: 3 })
    sb.inject('questionpro_points', { action: 'drop_connection', process: true })
    let calls = 0
    let last = null
    const report = await qp.bulkAward(surveyCompletions(5_000), {
      batchSize: 500,
      concurrency: 4,
      journal,
      onProgress: (p) => {
        calls++
        last = p
      },
    })
    console.log(`progress: ${calls} calls, ${last.rowsDone}/${last.rowsTotal} rows`)
    const t = report.totals
    console.log(`awarded ${t.awarded}, unknown ${t.unknown}, in ${report.requests} requests`)
    for (const c of report.unknownChunks) {
      console.log(`  rows ${c.firstRow}-${c.lastRow} may or may not be awarded: check before sending them again`)
    }

    // 3. The same job again with the same journal: confirmed batches are not sent again, and the
    //    unknown one is listed, not re-sent (pass resendUnknown: true to send it anyway).
    const again = await qp.bulkAward(surveyCompletions(5_000), { batchSize: 500, journal })
    console.log(
      `re-run: ${again.requests} requests, ${again.resumedChunks} batches from the journal, ` +
        `awarded ${again.totals.awarded}, unknown ${again.totals.unknown}`,
    )
    console.log(`ledger: ${Object.keys(sb.ledger()).length} members credited`)
  } finally {
    await sb.close()
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(journal + suffix, { force: true })
  }
}

main().catch((e) => {
  console.error(e instanceof RewardkitError ? `${e.name}: ${e.message}` : e)
  process.exitCode = 1
})
